// Training methods end to end through the CLI: `train --use-dora --loraplus-lr-ratio --neftune-noise-alpha` writes a
// PEFT DoRA adapter that generate/merge read; `export` refuses DoRA without --to-lora and converts it with it.
using System.Text.Json;
using LoraSharp.Formats.Safetensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class MethodsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-methods-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string TrainDora()
    {
        string data = StoryDataset.Write(_dir, "train.json", 16, 1);
        var (code, output, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", data, "--format", "alpaca",
            "--name", "dora", "--output", Path.Combine(_dir, "loras"), "--max-steps", "3", "--micro-batch-size", "4", "--batch-size", "4",
            "-r", "4", "--target-modules", "all-linear", "--lora-dropout", "0.1", "--lr", "1e-3", "--warmup-steps", "0",
            "--use-dora", "--loraplus-lr-ratio", "16", "--neftune-noise-alpha", "5");
        Assert.True(code == 0, err + output);
        return Path.Combine(_dir, "loras", "dora");
    }

    [Fact]
    public void Train_UseDora_WritesPeftDoraAdapter_WithTheSettingsRecorded()
    {
        string folder = TrainDora();
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "adapter_config.json"))))
            Assert.True(doc.RootElement.GetProperty("use_dora").GetBoolean());
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "training_parameters.json"))))
        {
            Assert.True(doc.RootElement.GetProperty("use_dora").GetBoolean());
            Assert.Equal(16, doc.RootElement.GetProperty("loraplus_lr_ratio").GetDouble());
            Assert.Equal(5, doc.RootElement.GetProperty("neftune_noise_alpha").GetDouble());
        }
        using var st = SafetensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors"));
        Assert.Equal(35, st.Tensors.Count(t => t.Name.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal)));

        // merge reads it
        var (code, _, err) = MergeCommandTests.Run("merge", "-m", SharedFixtures.Stories260KHf, "-a", folder, "-o", Path.Combine(_dir, "merged"));
        Assert.True(code == 0, err);
    }

    [Fact]
    public void Export_Dora_NeedsToLora_AndReportsTheConversionError()
    {
        string folder = TrainDora();
        string gguf = Path.Combine(_dir, "dora.gguf");
        var (code, _, err) = MergeCommandTests.Run("export", "--adapter", folder, "--model", SharedFixtures.Stories260KHf, "--out", gguf);
        Assert.NotEqual(0, code);
        Assert.Contains("--to-lora", err);
        Assert.False(File.Exists(gguf));

        (code, var output, err) = MergeCommandTests.Run("export", "--adapter", folder, "--model", SharedFixtures.Stories260KHf, "--out", gguf, "--to-lora");
        Assert.True(code == 0, err);
        Assert.Contains("relative error", output);
        using (var g = Formats.Gguf.GgufFile.Open(gguf)) Assert.Equal("adapter", g.Get("general.type")!.AsString());

        (code, output, err) = MergeCommandTests.Run("export", "--adapter", folder, "--model", SharedFixtures.Stories260KHf, "--out", Path.Combine(_dir, "plain"),
            "--to-lora", "--format", "peft", "--rank", "8");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "plain", "adapter_config.json")));
        Assert.False(doc.RootElement.GetProperty("use_dora").GetBoolean());
    }
}
