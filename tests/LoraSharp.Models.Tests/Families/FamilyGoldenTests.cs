// The qwen2 / qwen3 / smollm3 / gemma3_text / gemma2 / phi3 tiny checkpoints of tests/references/families against their float64 PyTorch reference
// (tests/references/families_reference.py): logits, LoRA logits and every LoRA gradient; plus finite differences,
// the cached decode path against the full forward, and the HF folder against LoraSharp's own GGUF reading.
using LoraSharp.Core.Optim;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Families;

public class FamilyGoldenTests
{
    public static TheoryData<string> Families => [.. FamilyFixtures.Names];

    internal static LlamaModel Load(string family, bool fullFineTuning = false)
    {
        string dir = FamilyFixtures.ModelFolder(family);
        try
        {
            using var loaded = ModelLoader.Load(dir);
            return LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath, fullFineTuning);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    internal static float[] Golden(string family, string name)
    {
        using var st = SafetensorsFile.Open(FamilyFixtures.File(family, "golden.safetensors"));
        using var t = st.GetTensor(name);
        return t.Floats.ToArray();
    }

    internal static Batch GoldenBatch(string family)
    {
        using var st = SafetensorsFile.Open(FamilyFixtures.File(family, "golden.safetensors"));
        using var t = st.GetTensor("input_ids");
        int B = t.Shape[0], T = t.Shape[1];
        var ids = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.Bytes).ToArray().Select(v => (int)v).ToArray();
        return new Batch(B, T, ids, Enumerable.Repeat((byte)1, B * T).ToArray(), ids);
    }

    private static double GoldenMeta(string family, string key)
    {
        using var st = SafetensorsFile.Open(FamilyFixtures.File(family, "golden.safetensors"));
        return double.Parse(st.Metadata[key], System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static void AttachReferenceAdapter(LlamaModel model, string family)
    {
        using var st = SafetensorsFile.Open(FamilyFixtures.File(family, "adapter_model.safetensors"));
        foreach (var layer in model.Layers)
            foreach (var module in layer.ModuleNames)
            {
                var linear = layer.Projection(module);
                var a = new LoraAdapter("default", 4, linear.InFeatures, linear.OutFeatures, scale: 2f, dropout: 0f, trainable: true);
                using (var ta = st.GetTensor(LoraKeys.A(linear.Name))) ta.Floats.CopyTo(a.A.Floats);
                using (var tb = st.GetTensor(LoraKeys.B(linear.Name))) tb.Floats.CopyTo(a.B.Floats);
                linear.Attach(a);
            }
    }

    [Theory, MemberData(nameof(Families))]
    public void Logits_MatchFloat64Reference(string family)
    {
        using var model = Load(family);
        var logits = model.Logits(GoldenBatch(family));
        double max = TestData.MaxAbsDiff(logits, Golden(family, "logits"));
        Assert.True(max <= 1e-5, $"{family}: max |logits - float64 reference| = {max:E3}");
        double loss = model.Loss(GoldenBatch(family));
        Assert.True(Math.Abs(loss - GoldenMeta(family, "loss")) <= 1e-5, $"{family}: loss {loss:R} vs {GoldenMeta(family, "loss"):R}");
    }

    [Theory, MemberData(nameof(Families))]
    public void LoraLogitsAndGradients_MatchFloat64Reference(string family)
    {
        using var model = Load(family);
        AttachReferenceAdapter(model, family);
        var batch = GoldenBatch(family);
        double maxLogits = TestData.MaxAbsDiff(model.Logits(batch), Golden(family, "lora_logits"));
        Assert.True(maxLogits <= 1e-5, $"{family}: LoRA logits max diff {maxLogits:E3}");

        var parameters = model.TrainableParameters();
        Assert.Equal(model.Layers.Length * 2 * model.Layers[0].ModuleNames.Count, parameters.Count);
        Optimizer.ZeroGrad(parameters);
        double sum = model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out int count);
        Assert.True(Math.Abs(sum / count - GoldenMeta(family, "lora_loss")) <= 1e-5);
        double worst = 0;
        foreach (var p in parameters)
        {
            var expected = Golden(family, p.Name);
            double scale = expected.Max(v => Math.Abs((double)v));
            double rel = TestData.MaxAbsDiff(p.Grad.Floats, expected) / scale;
            worst = Math.Max(worst, rel);
            Assert.True(rel <= 1e-4, $"{family} {p.Name}: max |grad diff| / max |grad| = {rel:E3}");
        }
    }

    [Theory, MemberData(nameof(Families))]
    public void FiniteDifferences_MatchBackward(string family)
    {
        // Full fine-tuning: every weight trains, so the q/k norms' (qwen3) and the embedding's gradients are checked
        // too. Gemma refuses full fine-tuning (its norms are held as 1 + w), so its LoRA entries are checked instead.
        bool full = !family.StartsWith("gemma", StringComparison.Ordinal);
        using var model = Load(family, fullFineTuning: full);
        if (!full) AttachReferenceAdapter(model, family);
        var batch = GoldenBatch(family);
        var parameters = model.TrainableParameters();
        Optimizer.ZeroGrad(parameters);
        model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
        var names = parameters.Select(p => p.Name).Where(n => !full || n.Contains("norm") || n.Contains("q_proj") || n.Contains("qkv_proj") || n.Contains("gate_up_proj") || n.Contains("embed")).ToList();
        Assert.Contains(names, n => family != "qwen3" || n.EndsWith("self_attn.k_norm.weight", StringComparison.Ordinal));
        var rng = new Random(5);
        foreach (var p in parameters.Where(p => names.Contains(p.Name)).OrderBy(_ => rng.Next()).Take(8))
        {
            var g = p.Grad.Floats;
            int i = 0;
            for (int j = 1; j < g.Length; j++) if (Math.Abs(g[j]) > Math.Abs(g[i])) i = j;
            float original = p.Value.Floats[i];
            const float h = 1e-2f;
            p.Value.Floats[i] = original + h;
            if (full) model.RepackTrainable();
            double up = model.Loss(batch);
            p.Value.Floats[i] = original - h;
            if (full) model.RepackTrainable();
            double down = model.Loss(batch);
            p.Value.Floats[i] = original;
            if (full) model.RepackTrainable();
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - g[i]) <= 2e-2 * Math.Abs(g[i]) + 1e-4, $"{family} {p.Name}[{i}]: numeric {numeric:E4} vs analytic {g[i]:E4}");
        }
    }

    [Theory, MemberData(nameof(Families))]
    public void CachedDecode_MatchesFullForward(string family)
    {
        using var model = Load(family);
        var batch = GoldenBatch(family);
        int T = batch.T, V = model.Config.VocabSize;
        var full = model.Logits(batch);
        var cache = model.CreateCache(T, maxChunk: 5);
        var ids = batch.InputIds.AsSpan(0, T);
        model.ForwardCached(ids[..7], cache);   // a prefill in two chunks, then one token at a time
        for (int t = 7; t < T; t++)
        {
            var logits = model.ForwardCached(ids.Slice(t, 1), cache);
            double d = TestData.MaxAbsDiff(logits, full.AsSpan(t * V, V));
            Assert.True(d <= 2e-5, $"{family}: decode logits at {t} differ by {d:E3}");
        }
    }

    [Fact]
    public void Gemma3_FullFineTuning_IsRefusedWithAReason()
    {
        var e = Assert.Throws<Core.UserErrorException>(() => Load("gemma3_text", fullFineTuning: true));
        Assert.Contains("LoRA", e.Message);
    }

    [Fact]
    public void Gemma3_LayersSlideExceptEverySixth_AndTheLocalOnesUseTheLocalRopeBase()
    {
        using var model = Load("gemma3_text");
        Assert.Equal([4, 4, 4, 4, 4, 0], model.Layers.Select(l => l.SlidingWindow));
        Assert.Equal(0.25f, model.Config.AttentionScale);   // query_pre_attn_scalar 16
        Assert.NotSame(model.Rope, model.RopeLocal);
        Assert.Equal(1f / 2f, model.Rope.InvFreq[0]);       // global: rope_theta with linear factor 2
        Assert.Equal(1f, model.RopeLocal.InvFreq[0]);       // local: rope_local_base_freq, unscaled
    }

    [Fact]
    public void Gemma2_EvenLayersSlide_OneRopeTable_BothSoftCapsRead()
    {
        using var model = Load("gemma2");
        Assert.Equal([4, 0, 4, 0], model.Layers.Select(l => l.SlidingWindow));
        Assert.Same(model.Rope, model.RopeLocal);
        Assert.Equal(2f, model.Config.AttentionSoftCap);
        Assert.Equal(6f, model.Config.LogitSoftCap);
        Assert.Equal(0.25f, model.Config.AttentionScale);   // query_pre_attn_scalar 16
        Assert.All(model.Layers, l => Assert.Null(l.QNorm));
        Assert.Throws<Core.UserErrorException>(() => Load("gemma2", fullFineTuning: true));
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Gemma2_WithoutEitherSoftCap_MissesTheReference(bool dropAttentionCap, bool dropFinalCap)
    {
        // The golden data depends on each cap: a model that skipped one would fail Logits_MatchFloat64Reference.
        string dir = FamilyFixtures.ModelFolder("gemma2");
        try
        {
            using var loaded = ModelLoader.Load(dir);
            var config = loaded.Config with
            {
                AttnLogitSoftcapping = dropAttentionCap ? null : loaded.Config.AttnLogitSoftcapping,
                FinalLogitSoftcapping = dropFinalCap ? null : loaded.Config.FinalLogitSoftcapping,
            };
            using var model = LlamaModel.FromTensors(config, loaded.Tensors, loaded.SourcePath);
            double max = TestData.MaxAbsDiff(model.Logits(GoldenBatch("gemma2")), Golden("gemma2", "logits"));
            Assert.True(max > 0.1, $"without the {(dropAttentionCap ? "attention" : "final")} cap the logits still match ({max:E3})");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Smollm3_NoRopeLayers_AreThoseOfTheConfig()
    {
        using var model = Load("smollm3");
        Assert.Equal([true, true, true, false], model.Layers.Select(l => l.UsesRope));
    }

    [Fact]
    public void Qwen3_HasPerHeadNorms_AndExplicitHeadDim()
    {
        using var model = Load("qwen3");
        Assert.Equal(20, model.Config.HeadDim);   // not hidden_size / heads = 12
        Assert.All(model.Layers, l => Assert.Equal(20, l.QNorm!.ElementCount));
    }

    [Fact]
    public void Phi3_ProjectionsAreFused_AndLoraKeysUseTheFusedNames()
    {
        using var model = Load("phi3");
        Assert.Equal(["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], model.Layers[0].ModuleNames);
        Assert.Equal(48 + 2 * 24, model.Layers[0].Qkv!.OutFeatures);   // [q | k | v]
        Assert.Equal(2 * 64, model.Layers[0].GateUp!.OutFeatures);      // [gate | up]
        AttachReferenceAdapter(model, "phi3");
        Assert.Contains(model.TrainableParameters(), p => p.Name == "base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight");
        Assert.Contains(model.TrainableParameters(), p => p.Name == "base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight");
    }

    [Fact]
    public void Phi3LongRope_ShortSequences_UseTheShortFactors()
    {
        // original_max_position_embeddings 8: the golden T = 16 batch runs on long_factor, this T = 8 one on short_factor.
        using var model = Load("phi3_longrope");
        Assert.Equal(12, model.Config.RotaryDim);                   // head_dim 16 x partial_rotary_factor 0.75
        Assert.Equal(12, model.Rope.RotaryDim);
        Assert.NotSame(model.Rope, model.RopeLong);
        using var st = SafetensorsFile.Open(FamilyFixtures.File("phi3_longrope", "golden.safetensors"));
        using var t = st.GetTensor("input_ids_short");
        int B = t.Shape[0], T = t.Shape[1];
        var ids = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.Bytes).ToArray().Select(v => (int)v).ToArray();
        var logits = model.Logits(new Batch(B, T, ids, Enumerable.Repeat((byte)1, B * T).ToArray(), ids));
        double max = TestData.MaxAbsDiff(logits, Golden("phi3_longrope", "logits_short"));
        Assert.True(max <= 1e-5, $"phi3_longrope short: max |logits - float64 reference| = {max:E3}");
        // sqrt(1 + ln(256 / 8) / ln(8)) scales cos and sin: at position 0 cos = the factor itself.
        Assert.Equal((float)Math.Sqrt(1 + Math.Log(32) / Math.Log(8)), model.Rope.Cos[0], 6);
    }

    [Fact]
    public void Phi3_LlamaTargetNames_AreRefusedNamingTheFusedOnes()
    {
        using var model = Load("phi3");
        var e = Assert.Throws<Core.UserErrorException>(() =>
            LoraInjector.Attach(model, new LoraSettings { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "v_proj"] }, seed: 1));
        Assert.Contains("'q_proj'", e.Message);
        Assert.Contains("qkv_proj", e.Message);
        Assert.Equal(2 * 2, LoraInjector.Attach(model, new LoraSettings { Rank = 2, Alpha = 4, TargetModules = ["qkv_proj", "gate_up_proj"] }, seed: 1).Count);   // 2 layers
    }
}
