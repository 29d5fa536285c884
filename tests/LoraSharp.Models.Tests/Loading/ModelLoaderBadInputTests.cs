// ModelLoader refuses pickles, adapter folders and inconsistent checkpoints with messages that say what to fix.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Loading;

public class ModelLoaderBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-loader-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData("pytorch_model.bin")]
    [InlineData("consolidated.00.pth")]
    [InlineData("model.pt")]
    public void PickleCheckpoint_IsRefusedWithReason(string name)
    {
        string p = Path.Combine(_dir, name);
        File.WriteAllBytes(p, [0x80, 0x02, 0x7D]);
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(p));
        Assert.Contains("pickle", e.Message);
        Assert.Contains("arbitrary code", e.Message);
        File.Copy(Path.Combine(SharedFixtures.Stories260KHf, "config.json"), Path.Combine(_dir, "config.json"));
        e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(_dir));
        Assert.Contains("arbitrary code", e.Message);
    }

    [Fact]
    public void AdapterFolder_IsRefusedAsNotABaseModel()
    {
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(SharedFixtures.Path("golden", "stories260K", "lora")));
        Assert.Contains("adapter", e.Message);
    }

    [Fact]
    public void MissingTensorOrWrongShape_NamesTensor()
    {
        File.Copy(Path.Combine(SharedFixtures.Stories260KHf, "config.json"), Path.Combine(_dir, "config.json"));
        using (var src = SafetensorsFile.Open(Path.Combine(SharedFixtures.Stories260KHf, "model.safetensors")))
        {
            var keep = src.Tensors.Where(t => t.Name != "model.layers.3.mlp.up_proj.weight").Select(t => new KeyValuePair<string, Tensor>(t.Name, src.GetTensor(t.Name))).ToList();
            SafetensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), keep);
        }
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(_dir));
        Assert.Contains("model.layers.3.mlp.up_proj.weight", e.Message);
        Assert.Contains("missing", e.Message);

        using (var src = SafetensorsFile.Open(Path.Combine(SharedFixtures.Stories260KHf, "model.safetensors")))
        {
            using var wrong = Tensor.Zeros(DType.F32, 172, 63);
            var all = src.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Name == "model.layers.3.mlp.up_proj.weight" ? wrong : src.GetTensor(t.Name))).ToList();
            SafetensorsWriter.Write(Path.Combine(_dir, "model.safetensors"), all);
        }
        e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(_dir));
        Assert.Contains("[172, 63]", e.Message);
        Assert.Contains("[172, 64]", e.Message);
    }

    [Fact]
    public void UntiedConfigWithoutLmHead_SaysHowToFix()
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"),
            File.ReadAllText(Path.Combine(SharedFixtures.Stories260KHf, "config.json")).Replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        File.Copy(Path.Combine(SharedFixtures.Stories260KHf, "model.safetensors"), Path.Combine(_dir, "model.safetensors"));
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(_dir));
        Assert.Contains("lm_head.weight", e.Message);
        Assert.Contains("tie_word_embeddings", e.Message);
    }
}
