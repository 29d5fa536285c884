// `train --modules-to-save embed_tokens,lm_head` through the CLI: the run header names them, the PEFT folder holds
// them under PEFT's keys, `export` to a GGUF LoRA refuses with the way out, and `merge --format gguf` takes them.
using LoraSharp.Formats.Safetensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class ModulesToSaveCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-mts-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Train_ModulesToSave_SavesThem_ExportRefuses_MergeTakesThem()
    {
        string data = StoryDataset.Write(_dir, "train.json", 16, 1);
        var (code, output, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", data, "--format", "alpaca",
            "--name", "mts", "--output", Path.Combine(_dir, "loras"), "--max-steps", "2", "--micro-batch-size", "4", "--batch-size", "4",
            "-r", "4", "--lr", "1e-3", "--warmup-steps", "0", "--modules-to-save", "embed_tokens,lm_head");
        Assert.True(code == 0, err + output);
        Assert.Contains("embed_tokens and lm_head in full (modules_to_save, untied from the tied base)", output);
        // The trainable count (which the memory estimate charges 16 bytes each: value, gradient, AdamW m and v) holds
        // both [512, 64] matrices beside LoRA r=4 on q/v (5 x (4x(64+64) + 4x(64+32)) = 4,480).
        var count = System.Text.RegularExpressions.Regex.Match(output, @"trainable: ([\d,.\u00a0 ]+) parameters");
        Assert.True(count.Success, output);
        Assert.Equal(2 * 512 * 64 + 4480, long.Parse(new string(count.Groups[1].Value.Where(char.IsDigit).ToArray())));
        string folder = Path.Combine(_dir, "loras", "mts");
        using (var st = SafetensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors")))
        {
            Assert.Contains(st.Tensors, t => t.Name == "base_model.model.model.embed_tokens.weight");
            Assert.Contains(st.Tensors, t => t.Name == "base_model.model.lm_head.weight");
        }

        string gguf = Path.Combine(_dir, "mts.gguf");
        (code, _, err) = MergeCommandTests.Run("export", "--adapter", folder, "--model", SharedFixtures.Stories260KHf, "--out", gguf);
        Assert.NotEqual(0, code);
        Assert.Contains("merge", err);
        Assert.Contains("modules_to_save", err);
        Assert.False(File.Exists(gguf));

        (code, _, err) = MergeCommandTests.Run("merge", "-m", SharedFixtures.Stories260KHf, "-a", folder, "--format", "gguf", "-o", Path.Combine(_dir, "merged.gguf"));
        Assert.True(code == 0, err);
        using var g = Formats.Gguf.GgufFile.Open(Path.Combine(_dir, "merged.gguf"));
        Assert.Contains(g.Tensors, t => t.Name == "output.weight");   // untied: llama.cpp reads the trained head
    }

    [Fact]
    public void Train_ModulesToSave_UnknownModule_NamesTheSupportedOnes()
    {
        string data = StoryDataset.Write(_dir, "train.json", 4, 1);
        var (code, _, err) = MergeCommandTests.Run("train", "-m", SharedFixtures.Stories260KHf, "--dataset", data, "--format", "alpaca",
            "--name", "bad", "--output", Path.Combine(_dir, "loras"), "--max-steps", "1", "--modules-to-save", "score");
        Assert.NotEqual(0, code);
        Assert.Contains("modules_to_save", err);
        Assert.Contains("embed_tokens and lm_head", err);
    }
}
