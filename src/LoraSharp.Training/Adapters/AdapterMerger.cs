// Merges LoRA adapters into a base model: W' = W + Σ_i c_i·s_i·B_i·A_i for every adapted weight (in adapter order, a
// DoRA adapter as PEFT merges it: W ← m ⊙ (W + c·s·B·A) / ‖W + c·s·B·A‖ per row, on the weight merged so far), each element
// accumulated in double from the base value (dequantized from its stored dtype) and rounded once to the output dtype.
// Output: a Hugging Face folder (model.safetensors with HF names, config.json, tokenizer/generation files copied)
// or a GGUF file (F32, F16, Q8_0 or Q4_0 matrices; q/k rows permuted back to GGUF's interleaved order; metadata copied
// from a GGUF base, or built from config.json + tokenizer.json for an HF base). Everything is checked (adapter
// shapes against the base, finiteness of adapters, and with Safe every merged value) before anything is written;
// modules_to_save matrices (embed_tokens, lm_head) replace the base's, and a tied base is written untied;
// folders are written under a temporary name and renamed, GGUF files via a temporary file.
// Not here: streaming output for models larger than memory (all output tensors are held in memory, in the output
// dtype), and tokenizer.json for an HF folder made from a GGUF base (the folder then has no tokenizer files).
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Core.Threading;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models;
using LoraSharp.Models.Loading;

namespace LoraSharp.Training.Adapters;

/// <summary>Options of <see cref="AdapterMerger"/>.</summary>
public sealed record MergeOptions
{
    /// <summary>"hf" (folder) or "gguf" (file).</summary>
    public string Format { get; init; } = "hf";

    /// <summary>Output dtype of matrices: null = the base's; hf: f32, f16, bf16; gguf: f32, f16, q8_0, q4_0. Norms stay F32 in GGUF.</summary>
    public string? DType { get; init; }

    /// <summary>Check every merged value is finite (also after rounding to f16/bf16) before writing.</summary>
    public bool Safe { get; init; }

    /// <summary>Replace an existing output.</summary>
    public bool Overwrite { get; init; }
}

/// <summary>What a merge did.</summary>
/// <param name="OutputPath">The folder or file written.</param>
/// <param name="MergedWeights">Number of base weights changed.</param>
/// <param name="TotalTensors">Tensors written.</param>
/// <param name="DType">Output dtype of matrices.</param>
/// <param name="Notes">Things the user should know (fallback dtypes, files not produced).</param>
public sealed record MergeReport(string OutputPath, int MergedWeights, int TotalTensors, string DType, IReadOnlyList<string> Notes);

/// <summary>Merges adapters into base weights.</summary>
public static class AdapterMerger
{
    private static readonly string[] s_hfCopyFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json", "added_tokens.json", "vocab.json", "merges.txt"];

    /// <summary>Loads the base at <paramref name="modelPath"/> and the adapters (path, scale), and merges them into <paramref name="outPath"/>.</summary>
    public static MergeReport Merge(string modelPath, IReadOnlyList<(string Path, double Scale)> adapters, string outPath, MergeOptions options, Action<string>? log = null)
    {
        using var loaded = ModelLoader.Load(modelPath, new ModelLoadOptions { BaseDType = "stored" });
        var weights = adapters.Select(a => (AdapterLoader.Read(a.Path, loaded.Config), a.Scale)).ToList();
        return Merge(loaded, weights, outPath, options, log);
    }

    /// <summary>Merges <paramref name="adapters"/> (each with a scale multiplying its own) into <paramref name="baseModel"/>.</summary>
    public static MergeReport Merge(LoadedModel baseModel, IReadOnlyList<(LoraWeights Weights, double Scale)> adapters, string outPath, MergeOptions options, Action<string>? log = null)
    {
        string format = options.Format.Trim().ToLowerInvariant();
        if (format is not ("hf" or "gguf")) throw new Core.UserErrorException($"Output format '{options.Format}' is not hf or gguf.");
        if (adapters.Count == 0) throw new Core.UserErrorException("Give at least one adapter to merge.");
        string full = Path.GetFullPath(outPath);
        if (!options.Overwrite && (Directory.Exists(full) || File.Exists(full)))
            throw new IOException($"{full} already exists; choose another name or pass --overwrite to replace it.");
        if (format == "gguf" && Directory.Exists(full)) throw new IOException($"{full} is a folder; a GGUF output must be a file path (e.g. merged.gguf).");

        // 1. Check everything before any work is written.
        foreach (var (w, scale) in adapters)
        {
            if (!double.IsFinite(scale)) throw new Core.UserErrorException($"{w.Source}: the scale {scale} is not finite.");
            w.CheckAgainst(name => baseModel.Tensors.TryGetValue(name, out var t) ? t.Shape : null, baseModel.SourcePath);
            w.CheckScalable(scale);
            foreach (var m in w.Modules) m.CheckFinite(w.Source);
        }
        // modules_to_save replace the base's matrix outright (PEFT's merge_and_unload keeps the trained copy). A tied
        // base is untied, as PEFT's copies untie it: lm_head.weight is written beside the embedding.
        var replacements = new Dictionary<string, SavedModuleWeights>(StringComparer.Ordinal);
        foreach (var (w, _) in adapters)
            foreach (var m in w.SavedModules)
                if (!replacements.TryAdd(m.WeightName, m))
                    throw new Core.UserErrorException($"Two adapters replace {m.WeightName} (modules_to_save '{m.Module}'), the second being {w.Source}; merge only one of them.");
        bool untie = replacements.Count > 0 && !baseModel.Tensors.ContainsKey(TensorNames.LmHead);
        if (replacements.Count > 0 && baseModel.Config.TieWordEmbeddings && baseModel.Tensors.ContainsKey(TensorNames.LmHead)) untie = true;
        var notes = new List<string>();
        var matrixType = ResolveDType(baseModel, format, options.DType, notes);
        var byWeight = new Dictionary<string, List<(LoraModuleWeights M, double Scale)>>(StringComparer.Ordinal);
        foreach (var (w, scale) in adapters)
            foreach (var m in w.Modules)
            {
                if (!byWeight.TryGetValue(m.WeightName, out var list)) byWeight[m.WeightName] = list = [];
                list.Add((m, scale));
            }
        var metadata = format == "gguf" ? GgufMetadata(baseModel, matrixType, notes) : null;

        // 2. Compute every output tensor (in memory, output dtype).
        var outputs = new List<KeyValuePair<string, Tensor>>();
        try
        {
            int done = 0;
            var inputs = baseModel.Tensors.ToList();
            if (untie && !baseModel.Tensors.ContainsKey(TensorNames.LmHead))
                inputs.Add(new(TensorNames.LmHead, baseModel.Tensors[TensorNames.Embedding]));   // the tied head, now its own tensor
            foreach (var (name, baseTensor) in inputs.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                byWeight.TryGetValue(name, out var mods);
                using var replaced = replacements.TryGetValue(name, out var rm) ? Tensor.FromFloats(rm.Values, rm.Rows, rm.Columns) : null;
                var t = replaced ?? baseTensor;
                var target = t.Shape.Length < 2 ? (format == "gguf" ? DType.F32 : HfVectorType(t, matrixType)) : matrixType;
                if (target is DType.Q8_0 or DType.Q4_0 && t.Shape[^1] % 32 != 0)
                {
                    notes.Add($"{name}: rows of {t.Shape[^1]} are not a multiple of 32, so it is stored as F16 instead of {target}.");
                    target = DType.F16;
                }
                var merged = MergeTensor(name, t, mods, target, options.Safe);
                if (format == "gguf")
                {
                    var bc = baseModel.Config;
                    int heads = !bc.GgufInterleavedQk ? 0 : TensorNames.IsQuery(name) ? bc.NumAttentionHeads : TensorNames.IsKey(name) ? bc.NumKeyValueHeads : 0;
                    if (heads > 0)
                    {
                        var p = RopePermutation.HfToGguf(merged, heads);
                        merged.Dispose();
                        merged = p;
                    }
                    if (bc.GemmaNorms && TensorNames.IsNorm(name))
                    {
                        // llama.cpp's gemma files hold 1 + w (its converter adds the 1; the graph multiplies by the stored value).
                        var f = merged.Floats;
                        for (int i = 0; i < f.Length; i++) f[i] = 1f + f[i];
                    }
                    string g = TensorNames.HfToGguf(name, bc.SandwichNorms, bc.FusedProjections) ?? throw new Core.UserErrorException($"{baseModel.SourcePath}: tensor '{name}' has no GGUF name.");
                    outputs.Add(new(g, merged));
                }
                else
                {
                    outputs.Add(new(name, merged));
                }
                if (mods != null || replaced != null) done++;
                log?.Invoke($"{name} {(replaced != null ? "replaced (modules_to_save)" : mods != null ? $"merged ({mods.Count} adapter{(mods.Count > 1 ? "s" : "")})" : "copied")}");
            }

            // 3. Write.
            if (format == "gguf")
            {
                outputs.AddRange(LlamaConfigWriter.GgufTensors(baseModel.Config));   // phi3: LongRoPE factor tensors
                GgufWriter.Write(full, metadata!, OrderGguf(outputs));
            }
            else
            {
                AtomicFolder.Write(full, options.Overwrite, temp =>
                {
                    SafetensorsWriter.Write(Path.Combine(temp, "model.safetensors"), outputs, new Dictionary<string, string> { ["format"] = "pt" });
                    WriteHfSideFiles(baseModel, temp, matrixType, notes, untie);
                });
            }
            return new MergeReport(full, done, outputs.Count, matrixType.ToString(), notes);
        }
        finally
        {
            foreach (var (_, t) in outputs) t.Dispose();
        }
    }

    // GGUF files conventionally list token_embd, then blocks in order, then output_norm/output.
    private static IEnumerable<KeyValuePair<string, Tensor>> OrderGguf(List<KeyValuePair<string, Tensor>> ts) =>
        ts.OrderBy(p => p.Key.StartsWith("blk.", StringComparison.Ordinal) ? 1 : p.Key.StartsWith("token_embd", StringComparison.Ordinal) ? 0 : 2)
          .ThenBy(p => p.Key.StartsWith("blk.", StringComparison.Ordinal) ? int.Parse(p.Key.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture) : 0)
          .ThenBy(p => p.Key, StringComparer.Ordinal);

    private static DType HfVectorType(Tensor t, DType matrixType) => t.DType is DType.F32 or DType.F16 or DType.BF16 && matrixType != DType.F32 ? matrixType : DType.F32;

    private static DType ResolveDType(LoadedModel b, string format, string? requested, List<string> notes)
    {
        if (requested != null)
        {
            return (format, requested.Trim().ToLowerInvariant()) switch
            {
                (_, "f32" or "float32") => DType.F32,
                (_, "f16" or "float16" or "fp16") => DType.F16,
                ("hf", "bf16" or "bfloat16") => DType.BF16,
                ("gguf", "q8_0") => DType.Q8_0,
                ("gguf", "q4_0") => DType.Q4_0,
                ("gguf", "bf16" or "bfloat16") => throw new Core.UserErrorException("GGUF merge output supports f32, f16, q8_0 and q4_0 (not bf16)."),
                ("hf", "q8_0" or "q4_0") => throw new Core.UserErrorException($"Safetensors output supports f32, f16 and bf16; use --format gguf for {requested}."),
                _ => throw new Core.UserErrorException($"Output dtype '{requested}' is not one of {(format == "hf" ? "f32, f16, bf16" : "f32, f16, q8_0, q4_0")}."),
            };
        }
        var stored = b.StoredDTypes.Where(p => b.Tensors[p.Key].Shape.Length >= 2).Select(p => p.Value)
            .GroupBy(d => d).OrderByDescending(g => g.Count()).First().Key;
        DType result = (format, stored) switch
        {
            (_, DType.F32) => DType.F32,
            ("hf", DType.F16 or DType.BF16) => stored,
            ("gguf", DType.F16) => DType.F16,
            ("gguf", DType.BF16) => DType.F16,
            ("gguf", DType.Q8_0) => DType.Q8_0,
            _ => DType.F16,
        };
        if (stored is not (DType.F32 or DType.F16 or DType.BF16 or DType.Q8_0) || (format == "hf" && stored == DType.Q8_0) || (format == "gguf" && stored == DType.BF16))
            notes.Add($"The base stores its matrices as {stored}; the merged model uses {result} (pass --dtype to choose). Merging into a re-quantized base would add quantization error on top of the adapter.");
        return result;
    }

    private static unsafe Tensor MergeTensor(string name, Tensor src, List<(LoraModuleWeights M, double Scale)>? mods, DType target, bool safe)
    {
        var dst = Tensor.Zeros(target, src.Shape);
        if (src.ElementCount == 0) return dst;
        int K = src.Shape.Length == 0 ? 1 : src.Shape[^1];
        long rows = src.ElementCount / K;
        var work = new MergeRows
        {
            Name = name, Src = (byte*)src.Pointer, Dst = (byte*)dst.Pointer, SrcType = src.DType, DstType = target, K = K, Rows = (int)rows,
            SrcRowBytes = src.ByteLength / rows, DstRowBytes = dst.ByteLength / rows, Mods = mods, Safe = safe,
            Errors = new Exception?[Math.Max(1, Threads.Count)],
        };
        // Rows are independent, so threads split them statically; every row is computed the same way on any thread.
        Threads.Run(ref work, work.Errors.Length);
        foreach (var e in work.Errors)
            if (e != null)
            {
                dst.Dispose();
                throw e;
            }
        return dst;
    }

    private unsafe struct MergeRows : IParallelWork
    {
        public string Name;
        public byte* Src, Dst;
        public DType SrcType, DstType;
        public int K, Rows;
        public long SrcRowBytes, DstRowBytes;
        public List<(LoraModuleWeights M, double Scale)>? Mods;
        public bool Safe;
        public Exception?[] Errors;

        public void Execute(int part, int parts)
        {
            var (start, end) = Threads.Split(Rows, part, parts);
            try
            {
                var f = new float[K];
                var acc = new double[K];
                var check = Safe && DstType != DType.F32 ? new float[K] : null;
                for (int r = start; r < end; r++)
                {
                    var srcRow = new ReadOnlySpan<byte>(Src + r * SrcRowBytes, (int)SrcRowBytes);
                    var dstRow = new Span<byte>(Dst + r * DstRowBytes, (int)DstRowBytes);
                    Dequant.DequantizeRow(SrcType, srcRow, f);
                    if (Mods != null)
                    {
                        for (int k = 0; k < K; k++) acc[k] = f[k];
                        foreach (var (m, scale) in Mods)
                        {
                            m.AddDeltaToRow(r, acc, scale);
                            m.ApplyDoraToRow(r, acc);
                        }
                        for (int k = 0; k < K; k++) f[k] = (float)acc[k];
                    }
                    if (Safe)
                        for (int k = 0; k < K; k++)
                            if (!float.IsFinite(f[k]))
                                throw new Core.UserErrorException($"Merged tensor {Name} has a non-finite value ({f[k]}) at row {r}, column {k}; nothing was written. Check the adapter scales.");
                    Dequant.QuantizeRow(DstType, f, dstRow);
                    if (check != null)
                    {
                        Dequant.DequantizeRow(DstType, dstRow, check);
                        for (int k = 0; k < K; k++)
                            if (!float.IsFinite(check[k]))
                                throw new Core.UserErrorException($"Merged tensor {Name} overflows {DstType} at row {r}, column {k} (value {f[k]}); nothing was written. Use --dtype f32 or smaller scales.");
                    }
                }
            }
            catch (Exception e)
            {
                Errors[part] = e;
            }
        }
    }

    private static void WriteHfSideFiles(LoadedModel b, string folder, DType dtype, List<string> notes, bool untied)
    {
        string torchDtype = dtype switch { DType.F16 => "float16", DType.BF16 => "bfloat16", _ => "float32" };
        if (b.Format == "hf")
        {
            string dir = Directory.Exists(b.SourcePath) ? b.SourcePath : Path.GetDirectoryName(b.SourcePath)!;
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
            config["torch_dtype"] = torchDtype;
            if (untied) config["tie_word_embeddings"] = false;
            File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            foreach (var f in s_hfCopyFiles)
                if (File.Exists(Path.Combine(dir, f))) File.Copy(Path.Combine(dir, f), Path.Combine(folder, f));
            return;
        }
        var c = b.Config;
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(c.ModelType switch
            {
                "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", "smollm3" => "SmolLM3ForCausalLM", "gemma3_text" => "Gemma3ForCausalLM",
                "gemma2" => "Gemma2ForCausalLM",
                "phi3" => "Phi3ForCausalLM", _ => "LlamaForCausalLM",
            }),
            ["model_type"] = c.ModelType,
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["num_hidden_layers"] = c.NumHiddenLayers,
            ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads,
            ["head_dim"] = c.HeadDim,
            ["vocab_size"] = c.VocabSize,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["rms_norm_eps"] = c.RmsNormEps,
            ["rope_theta"] = c.RopeTheta,
            ["rope_scaling"] = c.RopeScaling is { } rs ? new JsonObject { ["type"] = rs.RopeType, ["factor"] = rs.Factor } : null,
            ["tie_word_embeddings"] = c.TieWordEmbeddings && !untied,
            ["attention_bias"] = c.AttentionBias,
            ["mlp_bias"] = c.MlpBias,
            ["hidden_act"] = c.HiddenAct,
            ["bos_token_id"] = c.BosTokenId,
            ["eos_token_id"] = c.EosTokenIds.Count > 0 ? c.EosTokenIds[0] : null,
            ["torch_dtype"] = torchDtype,
        };
        if (c.FusedProjections)
        {
            // phi3: partial rotary and LongRoPE as Phi3Config has them (the factor lists inside rope_scaling).
            o["partial_rotary_factor"] = c.PartialRotaryFactor;
            o["sliding_window"] = c.SlidingWindow;
            if (c.RopeScaling is { IsLongRope: true } lr)
            {
                o["original_max_position_embeddings"] = lr.OriginalMaxPositionEmbeddings;
                o["rope_scaling"] = new JsonObject
                {
                    ["type"] = "longrope",
                    ["short_factor"] = new JsonArray([.. lr.ShortFactor!.Select(v => (JsonNode)(double)v)]),
                    ["long_factor"] = new JsonArray([.. lr.LongFactor!.Select(v => (JsonNode)(double)v)]),
                };
                if (lr.AttentionFactor is double af) o["rope_scaling"]!["attention_factor"] = af;
            }
        }
        if (c.NoRopeLayers is { } nr) o["no_rope_layers"] = new JsonArray([.. nr.Select(v => (JsonNode)v)]);
        if (c.GemmaNorms)
        {
            o.Remove("hidden_act");
            o["hidden_activation"] = c.HiddenAct;
            o["query_pre_attn_scalar"] = c.QueryPreAttnScalar;
            if (c.RopeLocalTheta is not null) o["rope_local_base_freq"] = c.RopeLocalTheta;
            if (c.ModelType == "gemma2")
            {
                o["attn_logit_softcapping"] = c.AttnLogitSoftcapping;   // null = no cap (an absent field would mean the default)
                o["final_logit_softcapping"] = c.FinalLogitSoftcapping;
            }
            o["sliding_window"] = c.SlidingWindow;
            o["layer_types"] = new JsonArray([.. c.SlidingLayers!.Select(s => (JsonNode)(s ? "sliding_attention" : "full_attention"))]);
        }
        File.WriteAllText(Path.Combine(folder, "config.json"), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        notes.Add("The base is a GGUF file, so the folder has config.json but no tokenizer files (LoraSharp cannot write tokenizer.json from GGUF metadata); copy them from the original model, or merge with --format gguf.");
    }

    private static List<KeyValuePair<string, GgufValue>> GgufMetadata(LoadedModel b, DType matrixType, List<string> notes)
    {
        uint fileType = matrixType switch { DType.F32 => 0u, DType.F16 => 1u, DType.Q8_0 => 7u, DType.Q4_0 => 2u, _ => 1u };   // llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0
        if (b.GgufMetadata is { } meta)
        {
            var list = meta.Where(p => p.Key != "general.file_type" && p.Key != "general.alignment").ToList();
            list.Add(new("general.file_type", GgufValue.From(fileType)));
            return list;
        }
        var c = b.Config;
        string dir = Directory.Exists(b.SourcePath) ? b.SourcePath : Path.GetDirectoryName(b.SourcePath)!;
        var list2 = LlamaConfigWriter.ToGguf(c, Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)), fileType);
        string tokJson = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(tokJson)) list2.AddRange(HfTokenizerToGguf.Metadata(tokJson, Path.Combine(dir, "tokenizer_config.json"), c));
        else notes.Add($"{dir} has no tokenizer.json, so the GGUF file has no tokenizer metadata; llama.cpp will not load it.");
        return list2;
    }
}
