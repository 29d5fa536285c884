// Shared fixtures for the adapter tool tests: stories260K paths, the golden batch, random adapters, temp folders
// that clean themselves up, and delta comparisons.
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;

namespace LoraSharp.Training.Tests.Adapters;

internal static class AdapterFixtures
{
    public static string HfFolder => SharedFixtures.Stories260KHf;

    public static string GgufF32 => SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf");

    public static string LoraFolder => SharedFixtures.Path("golden", "stories260K", "lora");

    public static string Golden(params string[] parts) => SharedFixtures.Path(["golden", "stories260K", .. parts]);

    /// <summary>The golden loss of the init adapter on batch.json (forward.safetensors, metadata loss_f64).</summary>
    public const double GoldenLoss = 1.1635450960739868;

    public static LlamaModel LoadModel(string? path = null)
    {
        using var loaded = ModelLoader.Load(path ?? HfFolder);
        return LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath);
    }

    public static LlamaConfig Config()
    {
        using var loaded = ModelLoader.Load(HfFolder, new ModelLoadOptions { BaseDType = "stored" });
        return loaded.Config;
    }

    /// <summary>The golden batch (2 × 24, right-padded), read like tests/LoraSharp.Models.Tests/Llama/Stories.cs.</summary>
    public static Batch GoldenBatch()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Golden("lora", "batch.json")));
        var r = doc.RootElement;
        int[] Flat(string key) => r.GetProperty(key).EnumerateArray().SelectMany(row => row.EnumerateArray().Select(e => e.GetInt32())).ToArray();
        var ids = Flat("input_ids");
        var mask = Flat("attention_mask").Select(v => (byte)v).ToArray();
        return new Batch(2, ids.Length / 2, ids, mask, Flat("labels"));
    }

    /// <summary>A seeded random adapter on every projection of stories260K with the given rank and scale.</summary>
    public static LoraWeights RandomAdapter(int seed, int rank, double scale, string source = "random", Func<string, int>? rankOf = null)
    {
        var config = Config();
        var rng = new Random(seed);
        var modules = new List<LoraModuleWeights>();
        int C = config.HiddenSize, H = config.IntermediateSize, QD = config.NumAttentionHeads * config.HeadDim, KD = config.NumKeyValueHeads * config.HeadDim;
        for (int l = 0; l < config.NumHiddenLayers; l++)
            foreach (var module in LlamaLayer.ProjectionNames)
            {
                var (n, k) = module switch
                {
                    "q_proj" => (QD, C), "k_proj" or "v_proj" => (KD, C), "o_proj" => (C, QD),
                    "gate_proj" or "up_proj" => (H, C), _ => (C, H),
                };
                string name = TensorNames.Linear(l, module)[..^".weight".Length];
                int r = rankOf?.Invoke(name) ?? rank;
                var a = new float[r * k];
                var b = new float[n * r];
                for (int i = 0; i < a.Length; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * 0.05);
                for (int i = 0; i < b.Length; i++) b[i] = (float)((rng.NextDouble() * 2 - 1) * 0.05);
                modules.Add(new LoraModuleWeights(name, r, k, n, a, b, scale));
            }
        return new LoraWeights(modules, source);
    }

    /// <summary>Largest |ΔW_x − ΔW_y| over all modules (modules must match).</summary>
    public static double MaxDeltaDiff(LoraWeights x, LoraWeights y, double yFactor = 1.0)
    {
        Assert.Equal(x.Modules.Select(m => m.Module), y.Modules.Select(m => m.Module));
        double worst = 0;
        foreach (var mx in x.Modules)
        {
            var dx = mx.Delta();
            var dy = y.Find(mx.Module)!.Delta(yFactor);
            for (int i = 0; i < dx.Length; i++) worst = Math.Max(worst, Math.Abs(dx[i] - dy[i]));
        }
        return worst;
    }

    /// <summary>Reads every tensor of a safetensors file as f32, by name.</summary>
    public static Dictionary<string, float[]> ReadAll(string file)
    {
        using var st = SafetensorsFile.Open(file);
        var d = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var info in st.Tensors)
        {
            using var t = st.GetTensor(info.Name);
            d[info.Name] = t.Floats.ToArray();
        }
        return d;
    }
}

/// <summary>A fresh empty folder under the temp directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "lorasharp-adapters-" + Guid.NewGuid().ToString("N"));

    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>Names of everything in the folder (to assert that nothing, not even a temp file, was left).</summary>
    public string[] Entries => Directory.EnumerateFileSystemEntries(Path).Select(System.IO.Path.GetFileName).ToArray()!;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
