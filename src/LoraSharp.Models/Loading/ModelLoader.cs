// Loads a Llama-family checkpoint from a Hugging Face folder (config.json + model.safetensors, sharded through
// model.safetensors.index.json, or a given *.safetensors file beside config.json) or from a .gguf file, into one
// LoadedModel with HF tensor names. GGUF q/k rows of architectures llama.cpp rotates in consecutive pairs (llama,
// smollm3) are permuted back to HF's rotate_half layout; NEOX architectures (qwen2, qwen3) store HF's order. Every expected
// tensor is checked for presence and shape. Pickle checkpoints (.bin/.pt/.pth/.ckpt) are refused: unpickling can
// execute arbitrary code. Base weights take the dtype ModelLoadOptions.BaseDType asks for (BaseStorageRules).
// Does not load tokenizers (GGUF metadata is handed on for that).
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Safetensors;

namespace LoraSharp.Models.Loading;

/// <summary>Loads checkpoints from Hugging Face folders and GGUF files.</summary>
public static class ModelLoader
{
    private static readonly string[] s_pickleExtensions = [".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"];

    /// <summary>
    /// Loads <paramref name="path"/>: a Hugging Face model folder, a *.safetensors file inside one, or a .gguf file.
    /// Throws <see cref="ModelFormatException"/> for malformed or unsupported input, naming the file and what to fix.
    /// </summary>
    public static LoadedModel Load(string path, ModelLoadOptions? options = null)
    {
        options ??= ModelLoadOptions.Default;
        var mode = BaseStorageRules.ParseUserValue(options.BaseDType);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            if (File.Exists(Path.Combine(full, "config.json"))) return LoadHf(full, null, mode);
            if (File.Exists(Path.Combine(full, "adapter_config.json")))
                throw new ModelFormatException(full, null, "is a PEFT adapter folder (adapter_config.json), not a base model; load the base model it was trained on.");
            RefusePickles(full);
            var ggufs = Directory.GetFiles(full, "*.gguf");
            if (ggufs.Length == 1) return LoadGguf(ggufs[0], mode);
            throw new ModelFormatException(full, null, "has no config.json (Hugging Face folder) and no single .gguf file; pass the model folder or the .gguf file.");
        }
        if (!File.Exists(full)) throw new FileNotFoundException($"{full}: no such file or folder.", full);
        string ext = Path.GetExtension(full).ToLowerInvariant();
        if (s_pickleExtensions.Contains(ext)) throw PickleRefused(full);
        if (ext == ".gguf" || StartsWith(full, "GGUF"u8)) return LoadGguf(full, mode);
        if (ext == ".safetensors") return LoadHf(Path.GetDirectoryName(full)!, full, mode);
        if (Path.GetFileName(full) == "config.json") return LoadHf(Path.GetDirectoryName(full)!, null, mode);
        if (StartsWith(full, "PK"u8) || StartsWith(full, [0x80])) throw PickleRefused(full);
        throw new ModelFormatException(full, null, "is not a .gguf, .safetensors or config.json file, nor a Hugging Face model folder.");
    }

    private static ModelFormatException PickleRefused(string file) => new(file, null,
        "is a PyTorch pickle checkpoint, which LoraSharp refuses to read: unpickling can run arbitrary code. " +
        "Convert it to safetensors first (e.g. in Python: safetensors.torch.save_file(torch.load(f, weights_only=True), 'model.safetensors')), " +
        "or use the model's safetensors/GGUF release.");

    private static void RefusePickles(string folder)
    {
        foreach (var f in Directory.GetFiles(folder))
            if (s_pickleExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())) throw PickleRefused(f);
    }

    private static bool StartsWith(string file, ReadOnlySpan<byte> magic)
    {
        using var fs = File.OpenRead(file);
        Span<byte> b = stackalloc byte[magic.Length];
        return fs.Read(b) == magic.Length && b.SequenceEqual(magic);
    }

    private static LoadedModel LoadHf(string folder, string? weightsFile, BaseStorage mode)
    {
        string configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFormatException(folder, "config.json", "is missing; a Hugging Face model folder needs config.json beside the weights.");
        var config = LlamaConfigReader.FromHfFile(configPath);
        if (weightsFile == null && !Directory.EnumerateFiles(folder, "*.safetensors").Any()) RefusePickles(folder);
        var set = weightsFile != null ? SafetensorsSet.OpenFiles([weightsFile]) : SafetensorsSet.OpenFolder(folder);
        var resources = new List<IDisposable> { set };
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var notes = new List<string>();
        try
        {
            var stored = new Dictionary<string, DType>(StringComparer.Ordinal);
            var expected = LlamaTensorLayout.Expected(config);
            var expectedNames = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var (name, shape) in expected)
            {
                string file = set.Contains(name) ? set.FileOf(name).Path : string.Join(", ", set.Files.Select(f => f.Path));
                if (!set.Contains(name))
                    throw new ModelFormatException(file, name, name == TensorNames.LmHead
                        ? "is missing and config.json has tie_word_embeddings false; set it to true if the output projection shares the embedding."
                        : "is missing (expected for this config.json).");
                var view = set.GetTensor(name);
                CheckShape(file, name, view, shape);
                stored[name] = view.DType;
                tensors[name] = Convert(view, mode, file, name, notes);
            }
            var ignored = set.Names.Where(n => !expectedNames.Contains(n)).ToList();
            return new LoadedModel(config, tensors, stored, weightsFile ?? folder, "hf", null, ignored, resources, notes);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            set.Dispose();
            throw;
        }
    }

    // Llama 3.1 GGUF conversions store the llama3 rope scaling as per-frequency divisors in this tensor.
    private const string RopeFreqs = "rope_freqs.weight";

    private static Core.Kernels.RopeScaling ReadRopeFreqs(GgufFile g, string path, LlamaConfig config)
    {
        using var t = g.GetTensor(RopeFreqs);
        if (t.DType != DType.F32 || t.ElementCount != config.HeadDim / 2)
            throw new ModelFormatException(path, RopeFreqs, $"is {t.DType} {t.ShapeText}; expected F32 [{config.HeadDim / 2}] (one factor per rotary frequency).");
        return new Core.Kernels.RopeScaling("llama3") { FrequencyFactors = t.Floats.ToArray() };
    }

    private static LoadedModel LoadGguf(string path, BaseStorage mode)
    {
        var g = GgufFile.Open(path);
        var resources = new List<IDisposable> { g };
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var notes = new List<string>();
        try
        {
            var config = LlamaConfigReader.FromGguf(g);
            if (mode == BaseStorage.Auto) mode = BaseStorage.Stored;   // a GGUF file's own types: quantized stays quantized
            var stored = new Dictionary<string, DType>(StringComparer.Ordinal);
            var byHf = new Dictionary<string, string>(StringComparer.Ordinal);
            var ignored = new List<string>();
            foreach (var t in g.Tensors)
            {
                if (TensorNames.GgufToHf(t.Name, config.SandwichNorms, config.FusedProjections) is { } hf) byHf[hf] = t.Name;
                else if (t.Name is not (RopeFreqs or "rope_factors_long.weight" or "rope_factors_short.weight")) ignored.Add(t.Name);
            }
            if (g.Contains(RopeFreqs)) config = config with { RopeScaling = ReadRopeFreqs(g, path, config) };
            var expected = LlamaTensorLayout.Expected(config);
            var expectedNames = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var (name, shape) in expected)
            {
                if (!byHf.TryGetValue(name, out string? gname))
                    throw new ModelFormatException(path, TensorNames.HfToGguf(name, config.SandwichNorms, config.FusedProjections) ?? name, $"is missing (the model needs it as {name}).");
                var view = g.GetTensor(gname);
                CheckShape(path, gname, view, shape);
                stored[name] = view.DType;
                int heads = !config.GgufInterleavedQk ? 0 : TensorNames.IsQuery(name) ? config.NumAttentionHeads : TensorNames.IsKey(name) ? config.NumKeyValueHeads : 0;
                if (heads > 0)
                {
                    var permuted = RopePermutation.GgufToHf(view, heads);
                    var converted = Convert(permuted, mode, path, gname, notes);
                    // Convert returns its input when no conversion is needed; the permuted copy is then the result.
                    if (!ReferenceEquals(converted, permuted)) permuted.Dispose();
                    tensors[name] = converted;
                }
                else if (config.GemmaNorms && TensorNames.IsNorm(name))
                {
                    // llama.cpp's converter stores gemma norms as 1 + w; LoadedModel holds Hugging Face's w.
                    var w = Llama.WeightConversion.ToF32(view, gname);
                    for (int i = 0; i < w.Length; i++) w[i] -= 1f;
                    tensors[name] = Tensor.FromFloats(w, w.Length);
                }
                else
                {
                    tensors[name] = Convert(view, mode, path, gname, notes);
                }
            }
            ignored.AddRange(byHf.Where(kv => !expectedNames.Contains(kv.Key)).Select(kv => kv.Value));
            return new LoadedModel(config, tensors, stored, path, "gguf", g.Metadata, ignored, resources, notes);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            g.Dispose();
            throw;
        }
    }

    private static void CheckShape(string file, string name, Tensor t, int[] expected)
    {
        if (!t.Shape.AsSpan().SequenceEqual(expected))
            throw new ModelFormatException(file, name, $"has shape {t.ShapeText} but the config needs {Tensor.FormatShape(expected)}.");
    }

    private static Tensor Convert(Tensor src, BaseStorage mode, string file, string name, List<string> notes)
    {
        var target = BaseStorageRules.Target(mode, src, out string? fallback);
        if (fallback != null) notes.Add($"{name}: {fallback}");
        if (target == src.DType) return src;
        if (!Dequant.CanDequantize(src.DType))
            throw new ModelFormatException(file, name, $"is stored as {src.DType}, which cannot be converted to {target}; use --base-dtype stored.");
        var converted = ConvertRows(src, target);
        src.Consume();   // the file's pages of this tensor are no longer needed: peak memory is the model, not model + file
        return converted;
    }

    /// <summary>A new tensor of <paramref name="target"/> dtype holding <paramref name="src"/>'s values, converted row by row.</summary>
    internal static unsafe Tensor ConvertRows(Tensor src, DType target)
    {
        var dst = Tensor.Zeros(target, src.Shape);
        if (src.ElementCount == 0) return dst;
        int rowLen = src.Shape.Length == 0 ? 1 : src.Shape[^1];
        long rows = src.ElementCount / rowLen;
        long srcRowBytes = src.ByteLength / rows, dstRowBytes = dst.ByteLength / rows;
        byte* s = (byte*)src.Pointer, d = (byte*)dst.Pointer;
        float[]? tmp = target == DType.F32 ? null : new float[rowLen];
        for (long r = 0; r < rows; r++)
        {
            var srcRow = new ReadOnlySpan<byte>(s + r * srcRowBytes, (int)srcRowBytes);
            var dstRow = new Span<byte>(d + r * dstRowBytes, (int)dstRowBytes);
            if (tmp == null)
            {
                Dequant.DequantizeRow(src.DType, srcRow, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(dstRow));
            }
            else
            {
                Dequant.DequantizeRow(src.DType, srcRow, tmp);
                Dequant.QuantizeRow(target, tmp, dstRow);
            }
        }
        return dst;
    }
}
