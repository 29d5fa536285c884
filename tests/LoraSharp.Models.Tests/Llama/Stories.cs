// Shared fixtures for the Llama golden tests: stories260K loaded once per test class, golden files opened by name.
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Llama;

internal static class Stories
{
    public static string HfFolder => SharedFixtures.Stories260KHf;

    public static string Gguf(string kind) => SharedFixtures.Path("models", "stories260K-gguf", $"stories260K-{kind}.gguf");

    public static string GoldenFile(params string[] parts) => SharedFixtures.Path(["golden", "stories260K", .. parts]);

    /// <summary>The model built from a folder or GGUF file (every tensor widened to f32).</summary>
    public static LlamaModel Load(string? path = null, bool fullFineTuning = false)
    {
        using var loaded = ModelLoader.Load(path ?? HfFolder);
        return LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath, fullFineTuning);
    }

    /// <summary>Reads an F32 tensor of a golden safetensors file.</summary>
    public static float[] ReadF32(string file, string name)
    {
        using var st = SafetensorsFile.Open(file);
        using var t = st.GetTensor(name);
        return t.Floats.ToArray();
    }

    /// <summary>Attaches the golden PEFT adapter lora/adapter_model.safetensors (r 4, alpha 8: scale 2) as a trainable adapter.</summary>
    public static void AttachGoldenAdapter(LlamaModel model, string file = "adapter_model.safetensors")
    {
        using var st = SafetensorsFile.Open(GoldenFile("lora", file));
        foreach (var layer in model.Layers)
            foreach (var module in LlamaLayer.ProjectionNames)
            {
                var linear = layer.Projection(module);
                var a = new LoraAdapter("default", 4, linear.InFeatures, linear.OutFeatures, scale: 2f, dropout: 0f, trainable: true);
                using (var ta = st.GetTensor(LoraKeys.A(linear.Name))) ta.Floats.CopyTo(a.A.Floats);
                using (var tb = st.GetTensor(LoraKeys.B(linear.Name))) tb.Floats.CopyTo(a.B.Floats);
                linear.Attach(a);
            }
    }

    /// <summary>The golden batch (2 × 24, right-padded).</summary>
    public static Batch GoldenBatch()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(GoldenFile("lora", "batch.json")));
        var r = doc.RootElement;
        int[] Flat(string key) => r.GetProperty(key).EnumerateArray().SelectMany(row => row.EnumerateArray().Select(e => e.GetInt32())).ToArray();
        var ids = Flat("input_ids");
        var mask = Flat("attention_mask").Select(v => (byte)v).ToArray();
        var labels = Flat("labels");
        return new Batch(2, ids.Length / 2, ids, mask, labels);
    }
}
