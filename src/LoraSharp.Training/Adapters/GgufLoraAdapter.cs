// llama.cpp's GGUF LoRA adapter format (convert_lora_to_gguf.py writes it, llama-adapter.cpp reads it):
//   metadata  general.architecture = the base's arch ("llama"), general.type = "adapter", adapter.type = "lora",
//             adapter.lora.alpha = f32 alpha
//   tensors   <base GGUF weight name>.lora_a  ggml ne = [in, r]   (PEFT lora_A [r, in], rows unchanged)
//             <base GGUF weight name>.lora_b  ggml ne = [r, out]  (PEFT lora_B [out, r]; for attn_q / attn_k the
//             rows are permuted to GGUF's interleaved rotary order exactly like the base weight's rows)
//   scale     llama.cpp computes user_scale · alpha / r with r = lora_b ne[0] (or user_scale when alpha is 0).
// One alpha serves every tensor, so modules whose scale is not alpha/r (rank/alpha patterns, rsLoRA) have the ratio
// folded into lora_b on export: B' = B · s·r/alpha. Importing reverses nothing: the result has the same ΔW.
// Not here: tensors other than lora_a/lora_b pairs (mergekit's extra norms, token-embedding LoRA are refused).
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Models.Lora;

namespace LoraSharp.Training.Adapters;

/// <summary>Reads, writes and attaches llama.cpp GGUF LoRA adapters.</summary>
public static class GgufLoraAdapter
{
    /// <summary>Suffix of the A factor tensor.</summary>
    public const string SuffixA = ".lora_a";

    /// <summary>Suffix of the B factor tensor.</summary>
    public const string SuffixB = ".lora_b";

    /// <summary>True when <paramref name="path"/> is a GGUF file whose general.type is "adapter".</summary>
    public static bool IsAdapterFile(string path)
    {
        if (!File.Exists(path)) return false;
        using (var fs = File.OpenRead(path))
        {
            Span<byte> magic = stackalloc byte[4];
            if (fs.Read(magic) != 4 || !magic.SequenceEqual("GGUF"u8)) return false;
        }
        using var g = GgufFile.Open(path);
        return g.Get("general.type")?.Value is string t && t == "adapter";
    }

    /// <summary>
    /// Writes <paramref name="weights"/> as a GGUF LoRA adapter for a base with <paramref name="config"/> (its
    /// architecture and head counts; needed to permute q/k rows). <paramref name="dtype"/> is F32 or F16.
    /// Written to a temporary file and renamed when complete.
    /// </summary>
    public static void Write(LoraWeights weights, LlamaConfig config, string path, DType dtype = DType.F32)
    {
        if (dtype is not (DType.F32 or DType.F16)) throw new ArgumentException($"GGUF LoRA tensors can be written as F32 or F16, not {dtype}.");
        foreach (var m in weights.Modules) m.CheckFinite(weights.Source);
        if (weights.SavedModules.Count > 0)
            throw new Core.UserErrorException($"{weights.Source} carries modules_to_save ({string.Join(", ", weights.SavedModules.Select(m => m.Module))}): llama.cpp's GGUF LoRA format holds only lora_a/lora_b pairs, not full replacement matrices. " +
                                            "Merge the adapter into the base instead (lorasharp merge --format gguf), which writes the trained matrices into the model.");
        if (weights.Modules.Any(m => m.IsDora))
            throw new Core.UserErrorException($"{weights.Source} is a DoRA adapter: llama.cpp's GGUF LoRA format has no magnitude vector, so it cannot hold it. " +
                                            "Merge it into the base (lorasharp merge --format gguf), or export it converted to a plain LoRA with " +
                                            "lorasharp export --to-lora (an SVD of the effective change; the conversion error is reported).");
        CheckShapes(weights, config);
        // alpha: the most common s·r, so that most modules need no folding.
        double alpha = weights.Modules.GroupBy(m => m.Scale * m.Rank).OrderByDescending(g => g.Count()).First().Key;
        if (!(alpha > 0) || !double.IsFinite(alpha)) alpha = weights.Modules[0].Rank;
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var m in weights.Modules)
            {
                string gguf = TensorNames.HfToGguf(m.WeightName, config.SandwichNorms, config.FusedProjections)
                    ?? throw new ArgumentException($"{weights.Source}: module '{m.Module}' has no GGUF tensor name.");
                double fold = m.Scale * m.Rank / alpha;
                var b = new float[m.B.Length];
                for (int i = 0; i < b.Length; i++) b[i] = (float)(fold * m.B[i]);
                using var bT = Tensor.FromFloats(b, m.OutFeatures, m.Rank);
                int heads = !config.GgufInterleavedQk ? 0 : TensorNames.IsQuery(m.WeightName) ? config.NumAttentionHeads : TensorNames.IsKey(m.WeightName) ? config.NumKeyValueHeads : 0;
                var bOut = heads > 0 ? RopePermutation.HfToGguf(bT, heads) : Tensor.FromFloats(b, m.OutFeatures, m.Rank);
                tensors.Add(new(gguf + SuffixA, Convert(Tensor.FromFloats(m.A, m.Rank, m.InFeatures), dtype)));
                tensors.Add(new(gguf + SuffixB, Convert(bOut, dtype)));
            }
            var meta = new List<KeyValuePair<string, GgufValue>>
            {
                new("general.architecture", GgufValue.From(config.GgufArchitecture)),
                new("general.type", GgufValue.From("adapter")),
                new("general.name", GgufValue.From(Path.GetFileName(Path.TrimEndingDirectorySeparator(weights.Source)))),
                new("adapter.type", GgufValue.From("lora")),
                new("adapter.lora.alpha", GgufValue.From((float)alpha)),
            };
            GgufWriter.Write(path, meta, tensors);
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }

    private static Tensor Convert(Tensor f32, DType dtype)
    {
        if (dtype == DType.F32) return f32;
        var dst = Tensor.Zeros(dtype, f32.Shape);
        Fp16.FromFloat(f32.Floats, dst.AsSpan<ushort>());
        f32.Dispose();
        return dst;
    }

    private static void CheckShapes(LoraWeights weights, LlamaConfig config)
    {
        int C = config.HiddenSize, H = config.IntermediateSize, QD = config.NumAttentionHeads * config.HeadDim, KD = config.NumKeyValueHeads * config.HeadDim;
        weights.CheckAgainst(name =>
        {
            if (TensorNames.LayerIndex(name) is not int l || l >= config.NumHiddenLayers) return null;
            string stem = name[..^".weight".Length];
            return stem[(stem.LastIndexOf('.') + 1)..] switch
            {
                "q_proj" => [QD, C],
                "k_proj" or "v_proj" => [KD, C],
                "o_proj" => [C, QD],
                "gate_proj" or "up_proj" => [H, C],
                "down_proj" => [C, H],
                "qkv_proj" when config.FusedProjections => [QD + 2 * KD, C],   // phi3: rows [q | k | v]
                "gate_up_proj" when config.FusedProjections => [2 * H, C],      // phi3: rows [gate | up]
                _ => null,
            };
        }, $"the {config.ModelType} base ({config.NumHiddenLayers} layers, hidden {C})");
    }

    /// <summary>
    /// Reads a GGUF LoRA adapter. q/k lora_b rows are permuted back to HF order using <paramref name="config"/>'s head
    /// counts, and every module is checked against its shapes.
    /// </summary>
    public static LoraWeights Read(string path, LlamaConfig config)
    {
        using var g = GgufFile.Open(path);
        string type = g.Get("general.type")?.Value as string ?? "(missing)";
        if (type != "adapter") throw new Formats.ModelFormatException(path, null, $"general.type is '{type}', not 'adapter'; this is not a GGUF LoRA adapter.");
        string adapterType = g.Get("adapter.type")?.Value as string ?? "(missing)";
        if (adapterType != "lora") throw new Formats.ModelFormatException(path, null, $"adapter.type is '{adapterType}'; only 'lora' adapters are supported.");
        string arch = g.Get("general.architecture")?.Value as string ?? "(missing)";
        // The GGUF name of the base's architecture (gemma3_text is written as gemma3, mistral as llama).
        if (arch != config.GgufArchitecture)
            throw new Core.UserErrorException($"{path}: the adapter is for architecture '{arch}' but the base model is '{config.ModelType}'; the adapter was made for another base.");
        double alpha = 0;
        if (g.Get("adapter.lora.alpha") is { } av)
        {
            try { alpha = av.AsDouble(); }
            catch (InvalidCastException e) { throw new Formats.ModelFormatException(path, "adapter.lora.alpha", $"is {av.Type} ({av}), not a usable number: {e.Message}", e); }
        }
        var pairs = new Dictionary<string, (string? A, string? B)>(StringComparer.Ordinal);
        foreach (var t in g.Tensors)
        {
            bool isA = t.Name.EndsWith(SuffixA, StringComparison.Ordinal), isB = t.Name.EndsWith(SuffixB, StringComparison.Ordinal);
            if (!isA && !isB)
                throw new Formats.ModelFormatException(path, null, $"tensor '{t.Name}' is not a .lora_a/.lora_b factor; only plain LoRA adapters are supported.");
            string baseName = t.Name[..^SuffixA.Length];
            var (a, b) = pairs.GetValueOrDefault(baseName);
            pairs[baseName] = isA ? (t.Name, b) : (a, t.Name);
        }
        if (pairs.Count == 0) throw new Formats.ModelFormatException(path, null, $"the adapter holds no tensors.");
        var modules = new List<LoraModuleWeights>();
        foreach (var (baseName, (aName, bName)) in pairs)
        {
            if (aName == null || bName == null)
                throw new Formats.ModelFormatException(path, null, $"'{baseName}' has {(aName == null ? SuffixA : SuffixB)} missing.");
            string hf = TensorNames.GgufToHf(baseName, config.SandwichNorms, config.FusedProjections)
                ?? throw new Formats.ModelFormatException(path, null, $"'{baseName}' is not a Llama tensor name (expected blk.N.attn_q.weight, ...).");
            if (!hf.EndsWith(".weight", StringComparison.Ordinal) || TensorNames.LayerIndex(hf) == null)
                throw new Formats.ModelFormatException(path, null, $"'{baseName}' is not a per-layer linear weight; only attention and MLP projections are supported.");
            var ia = g.Info(aName);
            var ib = g.Info(bName);
            int[] sa = ia.Shape, sb = ib.Shape;
            if (sa.Length != 2 || sb.Length != 2 || sa[0] != sb[1])
                throw new Formats.ModelFormatException(path, null, $"'{baseName}' has lora_a ne {Dims(ia)} and lora_b ne {Dims(ib)}; expected lora_a ne [in, r] and lora_b ne [r, out].");
            int rank = sa[0], K = sa[1], N = sb[0];
            var a = ReadF32(g, aName);
            var b = ReadF32(g, bName);
            int heads = !config.GgufInterleavedQk ? 0 : TensorNames.IsQuery(hf) ? config.NumAttentionHeads : TensorNames.IsKey(hf) ? config.NumKeyValueHeads : 0;
            if (heads > 0)
            {
                using var bt = Tensor.FromFloats(b, N, rank);
                using var p = RopePermutation.GgufToHf(bt, heads);
                b = p.Floats.ToArray();
            }
            double scale = alpha != 0 ? alpha / rank : 1.0;
            var m = new LoraModuleWeights(hf[..^".weight".Length], rank, K, N, a, b, scale);
            m.CheckFinite(path);
            modules.Add(m);
        }
        var w = new LoraWeights(modules, path);
        CheckShapes(w, config);
        return w;
    }

    private static string Dims(GgufTensorInfo t) => "[" + string.Join(", ", t.Dims) + "]";

    private static unsafe float[] ReadF32(GgufFile g, string name)
    {
        using var t = g.GetTensor(name);
        if (!Dequant.CanDequantize(t.DType)) throw new Formats.ModelFormatException(g.Path, null, $"'{name}' is {t.DType}, which cannot be read.");
        var dst = new float[t.ElementCount];
        int rowLen = t.Shape[^1];
        long rows = t.ElementCount / Math.Max(1, rowLen);
        long rowBytes = rows == 0 ? 0 : t.ByteLength / rows;
        var bytes = t.Bytes;
        for (long r = 0; r < rows; r++)
            Dequant.DequantizeRow(t.DType, bytes.Slice((int)(r * rowBytes), (int)rowBytes), dst.AsSpan((int)(r * rowLen), rowLen));
        return dst;
    }

    /// <summary>Reads <paramref name="path"/> and attaches it to <paramref name="model"/> with its scales times <paramref name="scale"/>.</summary>
    public static IReadOnlyList<LoraAdapter> Attach(LlamaModel model, string path, string adapterName = "default", double scale = 1.0) =>
        Read(path, model.Config).AttachTo(model, adapterName, scale);
}
