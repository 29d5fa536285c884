// Seed inputs: small files made from the ../shared fixtures (a real model's metadata and vocabulary with tiny
// tensors, the golden PEFT adapter cut to a few modules, a GPT-2 vocabulary cut to its first pieces) and tiny
// hand-made ones. Seeds stay small (mostly under 32 KiB) so a million mutations take minutes, not hours.
using System.Text;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;

namespace LoraSharp.Fuzz;

/// <summary>Builds seed inputs.</summary>
public static class Seeds
{
    private static readonly Lazy<LlamaConfig> s_stories = new(() => LlamaConfigReader.FromHfFile(SharedFixtures.Path("models", "stories260K-hf", "config.json")));

    /// <summary>The stories260K config (GGUF LoRA and PEFT targets read adapters against it).</summary>
    public static LlamaConfig StoriesConfig => s_stories.Value;

    /// <summary>UTF-8 bytes of <paramref name="s"/>.</summary>
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>The bytes of a shared fixture.</summary>
    public static byte[] Fixture(params string[] parts) => File.ReadAllBytes(SharedFixtures.Path(parts));

    /// <summary>Writes a file with <paramref name="write"/> in a temp folder and returns its bytes.</summary>
    public static byte[] Made(Action<string> write)
    {
        string dir = Path.Combine(Path.GetTempPath(), "lorasharp-fuzz-seed-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "seed.bin");
            write(path);
            return File.ReadAllBytes(path);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static Tensor Floats(int n, params int[] shape) => Tensor.FromFloats(Enumerable.Range(0, n).Select(i => (i % 7 - 3) * 0.25f).ToArray(), shape);

    /// <summary>GGUF seeds: stories260K's metadata (llama vocabulary) with tiny tensors, a byte-level (gpt2) vocabulary, and bare headers.</summary>
    public static IReadOnlyList<byte[]> Gguf()
    {
        using var real = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-Q8_0.gguf"));
        var meta = real.Metadata.ToList();
        var small = meta.Where(kv => !kv.Key.StartsWith("tokenizer.ggml.", StringComparison.Ordinal)).ToList();
        // A 64-piece cut of the vocabulary keeps the seed small but keeps every value type of a real file.
        var cut = new List<KeyValuePair<string, GgufValue>>(small);
        foreach (var kv in meta.Where(kv => kv.Key.StartsWith("tokenizer.ggml.", StringComparison.Ordinal)))
            cut.Add(kv.Value.Type == GgufValueType.Array ? new(kv.Key, Cut(kv.Value, 300)) : kv);
        var tensors = new List<KeyValuePair<string, Tensor>> { new("token_embd.weight", Floats(64, 2, 32)), new("output_norm.weight", Floats(8, 8)) };
        var gpt2 = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.From("llama")),
            new("tokenizer.ggml.model", GgufValue.From("gpt2")),
            new("tokenizer.ggml.pre", GgufValue.From("llama-bpe")),
            new("tokenizer.ggml.tokens", GgufValue.From(ByteLevelPieces().ToArray())),
            new("tokenizer.ggml.merges", GgufValue.From(new[] { "Ġ t", "h e", "Ġt he", "i n" })),
            new("tokenizer.ggml.token_type", GgufValue.From(Enumerable.Repeat(1, ByteLevelPieces().Count()).ToArray())),
            new("tokenizer.ggml.bos_token_id", GgufValue.From(1u)),
        };
        var arrays = new List<KeyValuePair<string, GgufValue>>
        {
            new("a.u8", GgufValue.From(new byte[] { 1, 2 })), new("a.i16", GgufValue.From(new short[] { -1 })),
            new("a.u64", GgufValue.From(new ulong[] { 7 })), new("a.f64", GgufValue.From(new[] { 0.5 })),
            new("a.bool", GgufValue.From(new[] { true, false })), new("a.str", GgufValue.From(new[] { "x", "" })),
            new("general.alignment", GgufValue.From(64u)),
        };
        return
        [
            Made(p => GgufWriter.Write(p, cut, tensors)),
            Made(p => GgufWriter.Write(p, small, tensors, version: 2)),
            Made(p => GgufWriter.Write(p, gpt2, [new("blk.0.attn_q.weight", Floats(32, 32))])),
            Made(p => GgufWriter.Write(p, arrays, [])),
        ];
    }

    private static GgufValue Cut(GgufValue array, int n)
    {
        var a = (Array)array.Value;
        if (a.Length <= n) return array;
        var b = Array.CreateInstance(a.GetType().GetElementType()!, n);
        Array.Copy(a, b, n);
        return new GgufValue(GgufValueType.Array, b, array.ElementType);
    }

    private static IEnumerable<string> ByteLevelPieces()
    {
        // GPT-2's byte-to-unicode map: printable Latin-1 bytes map to themselves, the rest to U+0100 upwards.
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 and <= 255;
            yield return printable ? ((char)b).ToString() : ((char)(256 + extra++)).ToString();
        }
        foreach (var s in new[] { "Ġt", "he", "Ġthe", "in", "<|endoftext|>" }) yield return s;
    }

    /// <summary>safetensors seeds: every dtype, metadata, an empty tensor, a scalar.</summary>
    public static IReadOnlyList<byte[]> Safetensors()
    {
        var bf16 = Floats(6, 2, 3).Clone();
        return
        [
            Made(p => SafetensorsWriter.Write(p, [new("a.weight", Floats(6, 2, 3)), new("b", Floats(4, 4))], new Dictionary<string, string> { ["format"] = "pt" })),
            Made(p => SafetensorsWriter.Write(p, [new("x", Tensor.Zeros(DType.F16, 3, 1, 2)), new("y", Tensor.Zeros(DType.BF16, 5)), new("e", Tensor.Zeros(DType.F32, 0, 4))])),
            Utf8("\u0002\0\0\0\0\0\0\0{}"),
            Made(p => SafetensorsWriter.Write(p, [new("s", Floats(1))])),
        ];
    }

    /// <summary>Sharded-index seeds: index ‖ shard a ‖ shard b.</summary>
    public static IReadOnlyList<byte[]> ShardedIndex()
    {
        var a = Made(p => SafetensorsWriter.Write(p, [new("model.a", Floats(4, 2, 2))]));
        var b = Made(p => SafetensorsWriter.Write(p, [new("model.b", Floats(3, 3)), new("model.c", Floats(2, 2))]));
        var index = Utf8("""{"metadata": {"total_size": 36}, "weight_map": {"model.a": "a.safetensors", "model.b": "b.safetensors", "model.c": "b.safetensors"}}""");
        var one = Utf8("""{"weight_map": {"model.a": "a.safetensors"}}""");
        return [FuzzWorkspace.Join(index, a, b), FuzzWorkspace.Join(one, a, [])];
    }

    /// <summary>tokenizer.json seeds: stories260K's (SentencePiece-style, byte fallback) and a byte-level one, each with a tokenizer_config.json.</summary>
    public static IReadOnlyList<byte[]> TokenizerJson()
    {
        var stories = Fixture("models", "stories260K-hf", "tokenizer.json");
        var storiesConfig = Fixture("models", "stories260K-hf", "tokenizer_config.json");
        var pieces = ByteLevelPieces().Select((p, i) => $"{System.Text.Json.JsonSerializer.Serialize(p)}: {i}");
        var byteLevel = Utf8("{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 260, \"content\": \"<|endoftext|>\", \"special\": true}], " +
            "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}, " +
            "\"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"ignore_merges\": false, \"vocab\": {" +
            string.Join(", ", pieces) + "}, \"merges\": [\"Ġ t\", \"h e\", [\"Ġt\", \"he\"], \"i n\"]}}");
        return
        [
            FuzzWorkspace.Join(stories, storiesConfig),
            FuzzWorkspace.Join(stories, []),
            FuzzWorkspace.Join(byteLevel, Utf8("""{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": true}""")),
        ];
    }

    /// <summary>encoder.json ‖ vocab.bpe seeds: GPT-2's first 300 pieces and the merges among them.</summary>
    public static IReadOnlyList<byte[]> VocabMerges()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(Fixture("tokenizers", "gpt2-bpe", "encoder.json"));
        var keep = doc.RootElement.EnumerateObject().Where(p => p.Value.GetInt32() < 300).Select(p => p.Name).ToHashSet();
        var encoder = "{" + string.Join(", ", doc.RootElement.EnumerateObject().Where(p => keep.Contains(p.Name)).Select(p => $"{System.Text.Json.JsonSerializer.Serialize(p.Name)}: {p.Value.GetInt32()}")) + ", \"<|endoftext|>\": 300}";
        var merges = File.ReadLines(SharedFixtures.Path("tokenizers", "gpt2-bpe", "vocab.bpe")).Take(200).ToList();
        return
        [
            FuzzWorkspace.Join(Utf8(encoder), Utf8(string.Join("\n", merges) + "\n")),
            FuzzWorkspace.Join(Utf8("""{"a": 0, "b": 1, "ab": 2}"""), Utf8("#version: 0.2\na b\n")),
        ];
    }

    /// <summary>config.json seeds: stories260K's and variants (Llama-3 rope scaling, qwen2, mistral sliding window).</summary>
    public static IReadOnlyList<byte[]> HfConfig() =>
    [
        Fixture("models", "stories260K-hf", "config.json"),
        Utf8("""{"model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true, "head_dim": 8, "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "bos_token_id": 1, "eos_token_id": [2, 3]}"""),
        Utf8("""{"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "attention_bias": true, "rope_scaling": {"type": "linear", "factor": 2}, "torch_dtype": "bfloat16"}"""),
        Utf8("""{"model_type": "mistral", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 100, "sliding_window": null, "hidden_act": "silu"}"""),
    ];

    /// <summary>adapter_config.json seeds: the golden one and variants with patterns, rsLoRA, init methods.</summary>
    public static IReadOnlyList<byte[]> PeftConfig() =>
    [
        Fixture("golden", "stories260K", "lora", "adapter_config.json"),
        Utf8("""{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear", "bias": "none", "task_type": "CAUSAL_LM", "use_rslora": true, "init_lora_weights": "gaussian", "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"v_proj": 8.5}, "layers_to_transform": [0, 1], "fan_in_fan_out": false, "modules_to_save": null}"""),
        Utf8("""{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "k_proj"], "init_lora_weights": false, "layers_to_transform": 1, "base_model_name_or_path": "x"}"""),
    ];

    private static LoraWeights GoldenAdapter(int modules)
    {
        var w = LoraWeights.ReadPeft(SharedFixtures.Path("golden", "stories260K", "lora"));
        return new LoraWeights(w.Modules.Where(m => m.Module.Contains(".layers.0.", StringComparison.Ordinal)).Take(modules), "seed", w.BaseModel);
    }

    /// <summary>PEFT adapter folder seeds: adapter_config.json ‖ adapter_model.safetensors (the golden adapter's layer-0 modules).</summary>
    public static IReadOnlyList<byte[]> PeftAdapter()
    {
        var config = Fixture("golden", "stories260K", "lora", "adapter_config.json");
        string dir = Path.Combine(Path.GetTempPath(), "lorasharp-fuzz-seed-" + Guid.NewGuid().ToString("N"));
        try
        {
            GoldenAdapter(2).SavePeft(dir, overwrite: true);
            var weights = File.ReadAllBytes(Path.Combine(dir, "adapter_model.safetensors"));
            var ownConfig = File.ReadAllBytes(Path.Combine(dir, "adapter_config.json"));
            return [FuzzWorkspace.Join(ownConfig, weights), FuzzWorkspace.Join(config, weights)];
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    /// <summary>GGUF LoRA seeds: the golden adapter's layer-0 modules written as a llama.cpp adapter (F32 and F16).</summary>
    public static IReadOnlyList<byte[]> GgufLora()
    {
        var w = GoldenAdapter(2);
        return [Made(p => GgufLoraAdapter.Write(w, StoriesConfig, p)), Made(p => GgufLoraAdapter.Write(GoldenAdapter(1), StoriesConfig, p, DType.F16))];
    }

    /// <summary>Dataset seeds: a JSON array (alpaca rows), JSONL, chat rows (messages and conversations), text rows.</summary>
    public static IReadOnlyList<byte[]> DatasetJson() =>
    [
        Utf8("""[{"instruction": "Say hi", "output": "Hi there."}, {"instruction": "Add", "input": "1 and 2", "output": "3"}]"""),
        Utf8("{\"instruction\": \"Name a color\", \"output\": \"Blue\"}\n\n{\"instruction\": \"Count\", \"input\": \"to 3\", \"output\": \"1 2 3\"}\r\n"),
        Utf8("""[{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]}]"""),
        Utf8("{\"conversations\": [{\"from\": \"human\", \"value\": \"Once upon\"}, {\"from\": \"gpt\", \"value\": \"a time.\"}]}\n"),
        Utf8("\uFEFF{\"text\": \"Lily had a ball. She liked it.\"}\n{\"text\": \"Tom ran.\"}"),
    ];

    /// <summary>Raw text seeds.</summary>
    public static IReadOnlyList<byte[]> RawText() =>
    [
        Utf8("Once upon a time there was a little girl named Lily.\nShe liked to play.\n\n\nOne day she found a ball. It was red.\n"),
        Utf8("a\n\n\n\n\nb c d e f g h i j k l m n o p q r s t u v w x y z ünïcødé 😀 \t end"),
        Utf8(string.Join("\n", Enumerable.Range(0, 40).Select(i => $"line {i}: the cat sat on the mat."))),
    ];

    /// <summary>Format file seeds: the shipped formats/*.json.</summary>
    public static IReadOnlyList<byte[]> FormatFiles() =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "formats"), "*.json").Order(StringComparer.Ordinal).Select(File.ReadAllBytes)
            .Append(Utf8("// comment\n{\"a, b\": \"%a%-%b%\", \"c\": \"x%c%y\",}")).ToList();

    /// <summary>training_parameters.json seeds.</summary>
    public static IReadOnlyList<byte[]> SettingsJson() =>
    [
        Utf8(Training.TrainingSettingsFile.ToJson(new Training.TrainingSettings())),
        Utf8("""{"lora_name": "x", "lora_rank": 8, "lora_alpha": 16, "micro_batch_size": 2, "batch_size": 4, "epochs": 1.5, "learning_rate": "3e-4", "lr_scheduler_type": "cosine", "cutoff_len": 64, "target_modules": ["q_proj"], "warmup_ratio": 0.1, "base_dtype": "q8_0", /* c */ }"""),
    ];

    /// <summary>YAML settings seeds.</summary>
    public static IReadOnlyList<byte[]> SettingsYaml() =>
    [
        Utf8("lora_name: story\nlora_rank: 8\nlora_alpha: 16\nlearning_rate: 3e-4\nepochs: 2\ntarget_modules: [q_proj, v_proj]\nraw_text_file: story.txt\nadd_eos_token: true\n"),
        Utf8("# comment\nmicro_batch_size: 1\nbatch_size: 8\ntarget_modules:\n  - q_proj\n  - k_proj\nwarmup_steps: 0\nwarmup_ratio: 0.05\nbase_dtype: nf4\ndouble_quant: yes\nlr_scheduler_type: 'constant'\n"),
        Utf8("{lora_name: a, cutoff_len: 32, eval_split: 0.1, seed: 7, rank_pattern: {q_proj: 4}}\n"),
    ];
}
