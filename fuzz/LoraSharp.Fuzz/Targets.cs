// Every parser LoraSharp exposes to files or requests, as a fuzz target. Each Run writes the input where the
// parser expects it and calls the same entry point the CLI/web use; Rejections lists the exception types that
// parser documents for bad input (exact types: an ArgumentOutOfRangeException is a crash even where
// ArgumentException is a rejection). Parsers that yield a tokenizer also encode and decode a fixed text with it,
// so a table that loads but breaks the encoder counts as the parser's miss.
using System.Text;
using System.Text.Json;
using LoraSharp.Formats;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Peft;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Loading;
using LoraSharp.Tokenizers;
using LoraSharp.Training;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Data;

namespace LoraSharp.Fuzz;

/// <summary>The targets.</summary>
public static partial class Targets
{
    private static readonly Lazy<Tokenizer> s_tokenizer = new(() => TokenizerLoader.FromFile(TestSupport.SharedFixtures.Path("models", "stories260K-hf")));

    private static readonly string[] s_jsonWords =
    [
        "{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "0", "-1", "1e309", "-0.0", "NaN", "\"\\u0000\"", "\"\\ud800\"",
        "9223372036854775808", "2147483648", "[[[[[[[[", "{\"\":", "\"\"", " ", "\n", "%", "\uFEFF", "\\",
    ];

    private static byte[][] Words(params string[] keys) =>
        [.. s_jsonWords.Concat(keys.SelectMany(k => new[] { k, $"\"{k}\"", $"\"{k}\": " })).Select(Encoding.UTF8.GetBytes)];

    private const string Sample = "Hello world! Once upon a time 123 <s></s> ünïcødé 😀 \t\n  end<|endoftext|>";

    private static void Exercise(Tokenizer tok)
    {
        int[] ids;
        try
        {
            ids = tok.EncodeToIds(Sample);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("is not in the vocabulary and the tokenizer has neither byte fallback nor an unknown token", StringComparison.Ordinal))
        {
            // The documented encode-time refusal of a vocabulary that cannot spell the text (no byte fallback, no
            // <unk>): a property of the text, not a parse failure. Decoding must still work for every id.
            ids = [.. Enumerable.Range(0, Math.Min(tok.VocabSize, 64))];
        }
        _ = tok.Decode(ids);
        _ = tok.Decode(ids, skipSpecialTokens: true);
    }

    /// <summary>All targets, in documentation order.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new()
        {
            Name = "gguf", Parser = "GGUF model file: GgufFile.Open, LlamaConfigReader.FromGguf, GgufTokenizer.FromMetadata (+ encode/decode)",
            Seeds = Seeds.Gguf,
            Rejections = [typeof(ModelFormatException), typeof(Core.UserErrorException), typeof(Core.UserErrorException)],
            Run = (input, ws) =>
            {
                using var g = GgufFile.Open(ws.Write("model.gguf", input));
                foreach (var t in g.Tensors) _ = g.GetTensor(t.Name).ElementCount;
                if (g.Get("general.architecture") != null) _ = LlamaConfigReader.FromGguf(g);
                if (g.Get("tokenizer.ggml.model") != null) Exercise(GgufTokenizer.FromMetadata(g.Metadata, g.Path));
            },
        },
        new()
        {
            Name = "safetensors", Parser = "safetensors file: SafetensorsFile.Open and every tensor's bytes",
            Seeds = Seeds.Safetensors,
            Rejections = [typeof(ModelFormatException)],
            Dictionary = Words("dtype", "shape", "data_offsets", "__metadata__", "F32", "F16", "BF16", "I64"),
            Run = (input, ws) =>
            {
                using var f = SafetensorsFile.Open(ws.Write("model.safetensors", input));
                foreach (var t in f.Tensors) _ = f.GetBytes(t.Name).Length + f.GetTensor(t.Name).ElementCount;
            },
        },
        new()
        {
            Name = "safetensors-index", Parser = "sharded safetensors: model.safetensors.index.json ‖ a.safetensors ‖ b.safetensors via SafetensorsSet.OpenIndex",
            Seeds = Seeds.ShardedIndex,
            Rejections = [typeof(ModelFormatException)],
            Dictionary = Words("weight_map", "metadata", "a.safetensors", "b.safetensors", "model.a", "model.b", "../x", "dtype", "shape", "data_offsets"),
            Run = (input, ws) =>
            {
                var p = FuzzWorkspace.Split(input, 3);
                ws.Write("a.safetensors", p[1]);
                ws.Write("b.safetensors", p[2]);
                using var set = SafetensorsSet.OpenIndex(ws.Write("model.safetensors.index.json", p[0]));
                foreach (var n in set.Names) _ = set.Info(n);
            },
        },
        new()
        {
            Name = "tokenizer-json", Parser = "tokenizer.json ‖ tokenizer_config.json via TokenizerLoader.FromTokenizerJson (+ encode/decode)",
            Seeds = Seeds.TokenizerJson,
            Rejections = [typeof(TokenizerFormatException), typeof(Core.UserErrorException)],
            Dictionary = Words("model", "vocab", "merges", "type", "BPE", "WordPiece", "added_tokens", "id", "content", "special", "pre_tokenizer", "normalizer",
                "decoder", "ByteLevel", "Metaspace", "Sequence", "Split", "Digits", "Prepend", "Strip", "pretokenizers", "prepend_scheme", "first", "always",
                "use_regex", "byte_fallback", "ignore_merges", "unk_token", "bos_token", "eos_token", "pad_token", "add_bos_token", "post_processor",
                "TemplateProcessing", "single", "SpecialToken", "pattern", "Regex", "behavior", "Isolated", "start", "\u2581", "<0x0A>"),
            AllocPerByte = 256,
            Run = (input, ws) =>
            {
                var p = FuzzWorkspace.Split(input, 2);
                string dir = Path.Combine(ws.Root, "tok");
                ws.Write("tok/tokenizer_config.json", p[1]);
                Exercise(TokenizerLoader.FromTokenizerJson(ws.Write("tok/tokenizer.json", p[0]), Path.Combine(dir, "tokenizer_config.json")));
            },
        },
        new()
        {
            Name = "vocab-merges", Parser = "GPT-2 encoder.json ‖ vocab.bpe via TokenizerLoader.FromEncoderAndMerges (+ encode/decode)",
            Seeds = Seeds.VocabMerges,
            Rejections = [typeof(TokenizerFormatException), typeof(Core.UserErrorException)],
            Dictionary = Words("#version: 0.2", "<|endoftext|>", "Ġ", " ", "\n", "\r\n", "a b\n"),
            AllocPerByte = 256,
            Run = (input, ws) =>
            {
                var p = FuzzWorkspace.Split(input, 2);
                Exercise(TokenizerLoader.FromEncoderAndMerges(ws.Write("encoder.json", p[0]), ws.Write("vocab.bpe", p[1])));
            },
        },
        new()
        {
            Name = "hf-config", Parser = "Hugging Face config.json via LlamaConfigReader.FromHfFile",
            Seeds = Seeds.HfConfig,
            Rejections = [typeof(ModelFormatException), typeof(Core.UserErrorException)],
            Dictionary = Words("model_type", "llama", "qwen2", "mistral", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "vocab_size", "head_dim", "rope_theta", "rope_scaling", "rope_type", "type", "factor", "low_freq_factor",
                "high_freq_factor", "original_max_position_embeddings", "llama3", "linear", "dynamic", "tie_word_embeddings", "rms_norm_eps",
                "max_position_embeddings", "attention_bias", "bos_token_id", "eos_token_id", "torch_dtype", "sliding_window"),
            Run = (input, ws) => _ = LlamaConfigReader.FromHfFile(ws.Write("config.json", input)),
        },
        new()
        {
            Name = "peft-config", Parser = "PEFT adapter_config.json via PeftAdapterConfig.Read and PeftAdapter.ToSettings(...).Validate()",
            Seeds = Seeds.PeftConfig,
            Rejections = [typeof(Core.UserErrorException), typeof(ModelFormatException)],
            Dictionary = Words("peft_type", "LORA", "r", "lora_alpha", "lora_dropout", "target_modules", "all-linear", "bias", "none", "use_rslora",
                "init_lora_weights", "gaussian", "pissa", "olora", "rank_pattern", "alpha_pattern", "layers_to_transform", "layers_pattern",
                "modules_to_save", "fan_in_fan_out", "task_type", "use_dora", "base_model_name_or_path", "q_proj"),
            Run = (input, ws) =>
            {
                var config = PeftAdapterConfig.Read(ws.Write("adapter_config.json", input));
                Training.Peft.PeftAdapter.ToSettings(config).Validate();
            },
        },
        new()
        {
            Name = "peft-adapter", Parser = "PEFT adapter folder: adapter_config.json ‖ adapter_model.safetensors via AdapterLoader.Read (stories260K shapes)",
            Seeds = Seeds.PeftAdapter,
            Rejections = [typeof(Core.UserErrorException), typeof(ModelFormatException), typeof(Core.UserErrorException), typeof(Core.UserErrorException)],
            Dictionary = Words("r", "lora_alpha", "target_modules", "rank_pattern", "use_rslora", "lora_A", "lora_B", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            Run = (input, ws) =>
            {
                var p = FuzzWorkspace.Split(input, 2);
                ws.Write("adapter/adapter_config.json", p[0]);
                ws.Write("adapter/adapter_model.safetensors", p[1]);
                _ = AdapterLoader.Read(Path.Combine(ws.Root, "adapter"), Seeds.StoriesConfig);
            },
        },
        new()
        {
            Name = "gguf-lora", Parser = "llama.cpp GGUF LoRA adapter via GgufLoraAdapter.Read (stories260K shapes)",
            Seeds = Seeds.GgufLora,
            Rejections = [typeof(ModelFormatException), typeof(Core.UserErrorException), typeof(Core.UserErrorException), typeof(Core.UserErrorException)],
            Run = (input, ws) => _ = GgufLoraAdapter.Read(ws.Write("adapter.gguf", input), Seeds.StoriesConfig),
        },
        new()
        {
            Name = "dataset-json", Parser = "JSON / JSONL dataset: DatasetDetector.Detect and TrainingData.Prepare (alpaca format, ChatML, text rows)",
            Seeds = Seeds.DatasetJson,
            Rejections = [typeof(DatasetException)],
            Dictionary = Words("instruction", "input", "output", "text", "messages", "conversations", "role", "content", "from", "value", "system",
                "user", "assistant", "human", "gpt", "tool"),
            AllocPerByte = 512,
            Run = (input, ws) =>
            {
                string path = ws.Write(input.Length % 2 == 0 ? "data.json" : "data.jsonl", input);
                var kind = DatasetDetector.Detect(path);
                var spec = new DataSpec
                {
                    DatasetPath = path, Format = kind == DatasetKind.Formatted ? "alpaca" : null, CutoffLength = 16, ContextLength = 512,
                    EvalFraction = input.Length % 3 == 0 ? 0.25 : 0, Pack = input.Length % 5 == 0, TrainOnlyAfter = input.Length % 7 == 0 ? "### Response:" : "",
                    ExcessLength = input.Length % 4 < 2 ? ExcessLength.Truncate : ExcessLength.Drop, AddEosToken = input.Length % 11 < 5,
                };
                _ = TrainingData.Prepare(spec, s_tokenizer.Value, Path.Combine(AppContext.BaseDirectory, "formats"));
            },
        },
        new()
        {
            Name = "dataset-raw", Parser = "raw text dataset via RawTextDataset.Build (small cutoff, overlap, newline favour, hard cuts)",
            Seeds = Seeds.RawText,
            Rejections = [typeof(DatasetException)],
            Dictionary = Words("\\n\\n\\n", "\n\n\n", "\r\n", "<s>", "</s>", "<unk>"),
            AllocPerByte = 512,
            Run = (input, ws) =>
            {
                var options = new RawTextOptions
                {
                    CutoffLength = 8 + input.Length % 24, OverlapLength = input.Length % 8, NewlineFavorLength = input.Length % 6, MinChars = input.Length % 3,
                    AddEosToken = input.Length % 2 == 0, ParseSpecialTokens = input.Length % 5 == 0,
                };
                _ = RawTextDataset.Build(ws.Write("raw.txt", input), s_tokenizer.Value, options);
            },
        },
        new()
        {
            Name = "format-file", Parser = "text-generation-webui format file via FormatFile.Load, then rendering rows",
            Seeds = Seeds.FormatFiles,
            Rejections = [typeof(DatasetException)],
            Dictionary = Words("instruction", "input", "output", "%instruction%", "%input%", "%output%", "%", "%%", ",", "//", "/*", "*/"),
            Run = (input, ws) =>
            {
                var format = FormatFile.Load(ws.Write("x-format.json", input));
                _ = format.TrainingPrompt();
                foreach (var row in JsonRows.Parse("""[{"instruction": "a%output%", "output": "b"}, {"instruction": "a", "input": "c", "output": "b"}, {"a": "1", "b": "2"}]"""u8, "rows"))
                    if (format.Match(row.Value.EnumerateObject().Where(f => f.Value.ValueKind == JsonValueKind.String).Select(f => f.Name)) != null) _ = format.Render(row, "rows");
            },
        },
        new()
        {
            Name = "settings-json", Parser = "training_parameters.json / --config x.json via TrainingSettingsFile.Load and Validate()",
            Seeds = Seeds.SettingsJson,
            Rejections = [typeof(Core.UserErrorException), typeof(ModelFormatException)],
            Dictionary = SettingsWords(),
            Run = (input, ws) => TrainingSettingsFile.Load(ws.Write("settings.json", input)).Validate(),
        },
        new()
        {
            Name = "settings-yaml", Parser = "--config x.yaml via TrainingSettingsFile.Load and Validate()",
            Seeds = Seeds.SettingsYaml,
            Rejections = [typeof(Core.UserErrorException), typeof(ModelFormatException)],
            Dictionary = [.. SettingsWords(), .. new[] { ": ", "- ", "&a", "*a", "!!str", "!!int", "|", ">", "---", "...", "~", ".nan", ".inf", "0x1F", "0o7", "<<: " }.Select(Encoding.UTF8.GetBytes)],
            AllocPerByte = 256,
            Run = (input, ws) => TrainingSettingsFile.Load(ws.Write("settings.yaml", input)).Validate(),
        },
        .. WebTargets(),
    ];

    private static byte[][] SettingsWords() => Words("lora_name", "lora_rank", "lora_alpha", "lora_dropout", "micro_batch_size", "batch_size", "epochs",
        "max_steps", "learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "cutoff_len", "target_modules", "layers_to_transform",
        "rank_pattern", "alpha_pattern", "excess_length", "optimizer", "base_dtype", "nf4", "double_quant", "seed", "eval_split", "full_fine_tuning",
        "init_lora_weights", "stop_at_loss", "hard_cut_string", "raw_text_file", "dataset", "format");

    /// <summary>The target named <paramref name="name"/>, or an error listing the names.</summary>
    public static FuzzTarget Find(string name) => All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"no fuzz target '{name}'; targets: {string.Join(", ", All.Select(t => t.Name))}.");

    internal static JsonSerializerOptions WebOptions => Web.Http.WebJson.Options;
}
