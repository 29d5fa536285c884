// Training methods end to end through the CLI: `train --use-dora --loraplus-lr-ratio --neftune-noise-alpha` writes a
// PEFT DoRA adapter that generate/merge read; `export` refuses DoRA without --to-lora and converts it with it;
// `train --objective dpo|orpo` on preference rows raises the held-out reward margin and logs TRL's metrics.
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

    // Stories-style preference pairs: the chosen ending is happy, the rejected one sad; held-out pairs use other names.
    private string WritePairs(string file, int first, int count, bool dropRejectedOfRow0 = false)
    {
        string[] names = ["Lily", "Max", "Tom", "Sue", "Ben", "Mia", "Tim", "Anna", "Sam", "Lucy", "Jack", "Emma"];
        string[] things = ["ball", "box", "toy", "flower", "hat", "stick"];
        var rows = new List<Dictionary<string, string>>();
        for (int i = first; i < first + count; i++)
        {
            string n = names[i % names.Length], t = things[i % things.Length];
            var row = new Dictionary<string, string>
            {
                ["prompt"] = $"Once upon a time, there was a little dog named {n}. One day, {n} found a {t}.",
                ["chosen"] = $" {n} was very happy. {n} played with the {t} all day.",
                ["rejected"] = $" {n} was very sad. {n} did not like the {t} and cried.",
            };
            if (dropRejectedOfRow0 && i == first) row.Remove("rejected");
            rows.Add(row);
        }
        string path = Path.Combine(_dir, file);
        File.WriteAllText(path, JsonSerializer.Serialize(rows));
        return path;
    }

    [Theory]
    [InlineData("dpo", "sigmoid")]
    [InlineData("dpo", "ipo")]
    [InlineData("orpo", "sigmoid")]
    public void Train_PreferenceObjective_RaisesHeldOutMargin_AndLogsRewards(string objective, string loss)
    {
        string train = WritePairs("pairs.json", 0, 12), eval = WritePairs("eval.json", 100, 6);
        var (code, output, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", train, "--eval-dataset", eval,
            "--objective", objective, "--dpo-loss", loss, "--name", objective, "--output", Path.Combine(_dir, "loras"), "--max-steps", "6",
            "--micro-batch-size", "4", "--batch-size", "4", "-r", "4", "--target-modules", "all-linear", "--lora-dropout", "0", "--lr", "1e-3",
            "--warmup-steps", "0", "--eval-steps", "3");
        Assert.True(code == 0, err + output);
        string folder = Path.Combine(_dir, "loras", objective);
        var lines = File.ReadAllLines(Path.Combine(folder, "training_log.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(6, lines.Count);
        foreach (var key in new[] { "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies" })
            Assert.True(lines[^1].TryGetProperty(key, out _), key);
        double evalMargin = lines[^1].GetProperty("eval_rewards/margins").GetDouble();
        double firstEvalMargin = lines[2].GetProperty("eval_rewards/margins").GetDouble();
        Assert.True(evalMargin > 0 && evalMargin >= firstEvalMargin, $"held-out reward margin {firstEvalMargin} -> {evalMargin}");
        Assert.Equal(1.0, lines[^1].GetProperty("eval_rewards/accuracies").GetDouble());
        Assert.True(File.Exists(Path.Combine(folder, "adapter_model.safetensors")));
    }

    [Fact]
    public void Train_Dpo_RowMissingRejected_NamesTheRowAndField()
    {
        string train = WritePairs("bad.json", 0, 4, dropRejectedOfRow0: true);
        var (code, _, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", train, "--objective", "dpo",
            "--name", "bad", "--output", Path.Combine(_dir, "loras"), "--max-steps", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("row 1", err);
        Assert.Contains("\"rejected\"", err);
    }

    [Fact]
    public void Train_Dpo_WithRawTextOrFullFineTuning_IsRefused()
    {
        string text = Path.Combine(_dir, "t.txt");
        File.WriteAllText(text, "Once upon a time there was a dog.");
        var (code, _, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--raw-text-file", text, "--objective", "dpo",
            "--name", "raw", "--output", Path.Combine(_dir, "loras"), "--max-steps", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("objective", err);
        string pairs = WritePairs("p.json", 0, 4);
        (code, _, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", pairs, "--objective", "dpo", "--full-fine-tuning",
            "--name", "full", "--output", Path.Combine(_dir, "loras"), "--max-steps", "1");
        Assert.NotEqual(0, code);
        Assert.Contains("full_fine_tuning", err);
    }
}
