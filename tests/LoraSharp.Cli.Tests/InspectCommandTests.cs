// `lorasharp inspect` on the shared fixtures: HF folder, GGUF files, the PEFT adapter folder, and bad paths.
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public class InspectCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Inspect_HfFolder_ShowsArchitectureParamsTokenizerAndMemory()
    {
        var (code, output, err) = Run("inspect", SharedFixtures.Stories260KHf);
        Assert.True(code == 0, err);
        Assert.Contains("architecture           llama", output);
        Assert.Contains("260,032", output);
        Assert.Contains("heads (q / kv)         8 / 4, head_dim 8", output);
        Assert.Contains("BPE, 512 tokens", output);
        Assert.Contains("LoRA memory (est.)", output);
        Assert.Matches(@"activations\s+[0-9.]+ MiB \(seq 512, micro-batch 1\); [0-9.]+ MiB with --gradient-checkpointing", output);
        Assert.Matches(@"model\.layers\.N\.self_attn\.q_proj\.weight\s+F32\s+5 \[64, 64\]", output);
    }

    [Fact]
    public void Inspect_ModulesToSave_ShowsThemInTheEstimate_AndRefusesOtherNames()
    {
        var (code, output, err) = Run("inspect", SharedFixtures.Stories260KHf, "--modules-to-save", "embed_tokens");
        Assert.True(code == 0, err);
        Assert.Contains("and embed_tokens in full (modules_to_save, 32,768 of them)", output);
        var (bad, _, badErr) = Run("inspect", SharedFixtures.Stories260KHf, "--modules-to-save", "q_proj");
        Assert.NotEqual(0, bad);
        Assert.Contains("--modules-to-save: 'q_proj' cannot be trained in full", badErr);
    }

    [Fact]
    public void Inspect_Phi3LongRope_ShowsFusedTensorsPartialRotaryAndLongRope()
    {
        string dir = FamilyFixtures.ModelFolder("phi3_longrope");
        try
        {
            var (code, output, err) = Run("inspect", dir);
            Assert.True(code == 0, err);
            Assert.Contains("architecture           phi3", output);
            Assert.Contains("rotary dims            12 of head_dim 16 (partial_rotary_factor 0.75)", output);
            Assert.Contains("long factors beyond 8 tokens, cos/sin x1.633", output);
            Assert.Matches(@"model\.layers\.N\.self_attn\.qkv_proj\.weight\s+F32\s+2 \[80, 48\]", output);   // (3 + 2·1)·16 rows
            Assert.Matches(@"model\.layers\.N\.mlp\.gate_up_proj\.weight\s+F32\s+2 \[160, 48\]", output);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Inspect_Gemma2Folder_ShowsWindowLayersAndSoftCaps()
    {
        string dir = FamilyFixtures.ModelFolder("gemma2");
        try
        {
            var (code, output, err) = Run("inspect", dir);
            Assert.True(code == 0, err);
            Assert.Contains("architecture           gemma2", output);
            Assert.Contains("sliding window         4 on 2 of 4 layers", output);
            Assert.Contains("logit soft-caps        attention 2, final 6", output);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Inspect_Q4_0Gguf_ShowsQuantTypesPerKindAndGgufTokenizer()
    {
        var (code, output, err) = Run("inspect", SharedFixtures.Path("models", "stories260K-gguf", "stories260K-Q4_0.gguf"));
        Assert.True(code == 0, err);
        Assert.Contains("GGUF", output);
        Assert.Contains("llama, 512 tokens", output);
        Assert.Matches(@"model\.embed_tokens\.weight\s+Q8_0", output);
        Assert.Matches(@"model\.layers\.N\.self_attn\.k_proj\.weight\s+Q4_0", output);
        Assert.Matches(@"model\.layers\.N\.mlp\.down_proj\.weight\s+F32", output);
    }

    [Fact]
    public void Inspect_AdapterFolder_ShowsRankAlphaTargetsTensorCount()
    {
        var (code, output, err) = Run("inspect", SharedFixtures.Path("golden", "stories260K", "lora"));
        Assert.True(code == 0, err);
        Assert.Contains("PEFT LoRA adapter", output);
        Assert.Matches(@"\br\s+4\b", output);
        Assert.Matches(@"lora_alpha\s+8", output);
        Assert.Contains("q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj", output);
        Assert.Matches(@"tensors\s+70", output);
    }

    [Fact]
    public void Inspect_MissingPath_FailsWithMessage()
    {
        var (code, _, err) = Run("inspect", "/no/such/model.gguf");
        Assert.NotEqual(0, code);
        Assert.Contains("/no/such/model.gguf", err);
    }

    [Fact]
    public void Inspect_PickleFile_IsRefusedWithReason()
    {
        string dir = Directory.CreateTempSubdirectory("lorasharp-inspect-").FullName;
        try
        {
            string p = Path.Combine(dir, "pytorch_model.bin");
            File.WriteAllBytes(p, [0x80, 0x02]);
            var (code, _, err) = Run("inspect", p);
            Assert.Equal(1, code);
            Assert.Contains("arbitrary code", err);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
