using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;

namespace LoraSharp.Models.Tests.Llama;

/// <summary>Llama 3.1 GGUF files carry rope scaling as rope_freqs.weight: inv_freq[i] is divided by factor[i].</summary>
public class RopeFreqsTests
{
    [Fact]
    public void GgufRopeFreqs_AllTwo_EqualsLinearScalingByTwo()
    {
        string dir = Directory.CreateTempSubdirectory("lorasharp-ropefreqs-").FullName;
        try
        {
            string path = Path.Combine(dir, "with-freqs.gguf");
            using (var g = GgufFile.Open(Stories.Gguf("F32")))
            {
                var tensors = g.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, g.GetTensor(t.Name))).ToList();
                tensors.Add(new("rope_freqs.weight", Tensor.FromFloats([2f, 2f, 2f, 2f], 4)));
                GgufWriter.Write(path, g.Metadata.Where(m => m.Key != "general.alignment"), tensors);
            }
            using var loaded = ModelLoader.Load(path);
            Assert.Equal([2f, 2f, 2f, 2f], loaded.Config.RopeScaling!.FrequencyFactors!);
            Assert.DoesNotContain("rope_freqs.weight", loaded.IgnoredTensors);
            using var withFreqs = LlamaModel.FromTensors(loaded.Config, loaded.Tensors);
            using var linear = LlamaModel.FromTensors(loaded.Config with { RopeScaling = new RopeScaling("linear", Factor: 2) }, loaded.Tensors);
            using var plain = LlamaModel.FromTensors(loaded.Config with { RopeScaling = null }, loaded.Tensors);
            var batch = new Batch(1, 12, [1, 365, 263, 400, 300, 301, 302, 303, 304, 305, 306, 307]);
            Assert.Equal(linear.Logits(batch), withFreqs.Logits(batch));
            Assert.NotEqual(plain.Logits(batch), withFreqs.Logits(batch));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void FrequencyFactors_WrongLength_AreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => RopeTable.InverseFrequencies(8, 10000, new RopeScaling("llama3") { FrequencyFactors = [1f, 1f] }));
        Assert.Contains("needs 4", e.Message);
    }
}
