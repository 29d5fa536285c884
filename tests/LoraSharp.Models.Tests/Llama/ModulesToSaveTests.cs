// modules_to_save on stories260K (tied embeddings): the embedding and head gradients match finite differences and,
// summed, the tied full-fine-tuning gradient; untying follows PEFT (each module its own copy of the base matrix,
// nothing changes at step 0, the lookup and the head train apart); on an untied base (qwen3) both gradients are full
// fine-tuning's; replacing and detaching restores the base.
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Llama;

public class ModulesToSaveTests
{
    [Theory]
    [InlineData("embed_tokens")]
    [InlineData("lm_head")]
    public void FiniteDifferences_OnTheSavedModule_MatchBackward(string module)
    {
        using var model = Stories.Load();
        model.TrainModulesToSave([module]);
        var batch = Stories.GoldenBatch();
        var parameters = model.TrainableParameters();
        var p = Assert.Single(parameters);
        Assert.Equal(LlamaModel.ModuleWeightName(module), p.Name);
        Optimizer.ZeroGrad(parameters);
        model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
        var g = p.Grad.Floats.ToArray();
        // The three entries with the largest gradients (small ones drown in float32 loss noise).
        var entries = Enumerable.Range(0, g.Length).OrderByDescending(j => Math.Abs(g[j])).Take(3).ToArray();
        Assert.True(Math.Abs(g[entries[0]]) > 1e-4, $"{module}: the gradient is ~0 ({g[entries[0]]:E3}); the module does not train");
        foreach (int i in entries)
        {
            float original = p.Value.Floats[i];
            const float h = 1e-3f;
            p.Value.Floats[i] = original + h; model.RepackTrainable();
            double up = model.Loss(batch);
            p.Value.Floats[i] = original - h; model.RepackTrainable();
            double down = model.Loss(batch);
            p.Value.Floats[i] = original; model.RepackTrainable();
            double numeric = (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - g[i]) <= 1e-2 * Math.Abs(g[i]) + 5e-5, $"{module}[{i}]: numeric {numeric:E4} vs analytic {g[i]:E4}");
        }
    }

    [Fact]
    public void BothModules_GradientsSumToTheTiedFullFineTuningGradient()
    {
        var batch = Stories.GoldenBatch();
        using var full = Stories.Load(fullFineTuning: true);
        var fp = full.TrainableParameters();
        Optimizer.ZeroGrad(fp);
        double fullLoss = full.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);

        using var model = Stories.Load();
        model.TrainModulesToSave(["lm_head", "model.embed_tokens"]);   // PEFT's spellings, any order
        Assert.Equal(["embed_tokens", "lm_head"], model.ModulesToSave);
        var parameters = model.TrainableParameters();
        Assert.Equal(["model.embed_tokens.weight", "lm_head.weight"], parameters.Select(p => p.Name));
        Optimizer.ZeroGrad(parameters);
        double loss = model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
        Assert.Equal(fullLoss, loss, 1e-9 * Math.Abs(fullLoss) + 1e-6);

        // Tied: d/dE = (lookup's part) + (head's part); untied copies get the two parts separately.
        var sum = model.GradEmbedding!.Floats.ToArray();
        var head = model.GradOutput!.Floats;
        for (int i = 0; i < sum.Length; i++) sum[i] += head[i];
        TestData.AssertClose(sum, full.GradEmbedding!.Floats, 2e-6, 1e-4, "embed grad + head grad vs tied full-FT grad");
        Assert.True(TestData.MaxAbsDiff(model.GradEmbedding.Floats, head) > 1e-3, "the two copies got the same gradient: they are still tied");
    }

    [Fact]
    public void UntiedBase_Qwen3_GradientsEqualFullFineTuningOnes()
    {
        // qwen3's fixture has its own lm_head: nothing to untie, and each matrix's gradient is full fine-tuning's.
        var batch = Stories.GoldenBatch();
        using var full = Families.FamilyGoldenTests.Load("qwen3", fullFineTuning: true);
        Optimizer.ZeroGrad(full.TrainableParameters());
        full.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
        using var model = Families.FamilyGoldenTests.Load("qwen3");
        Assert.False(model.TiedOutput);
        model.TrainModulesToSave(["embed_tokens", "lm_head"]);
        Optimizer.ZeroGrad(model.TrainableParameters());
        model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
        TestData.AssertClose(model.GradEmbedding!.Floats, full.GradEmbedding!.Floats, 1e-6, 1e-4, "embed_tokens grad");
        TestData.AssertClose(model.GradOutput!.Floats, full.GradOutput!.Floats, 1e-6, 1e-4, "lm_head grad");
    }

    [Fact]
    public void Untying_StartsFromTheBase_AndTrainsTheCopiesApart()
    {
        var batch = Stories.GoldenBatch();
        using var reference = Stories.Load();
        var baseLogits = reference.Logits(batch);
        var baseEmbedding = reference.EmbeddingF32();

        using var model = Stories.Load();
        model.TrainModulesToSave(["lm_head"]);
        Assert.Equal(baseLogits, model.Logits(batch));   // a copy of the base: nothing changes at step 0
        var p = Assert.Single(model.TrainableParameters());
        Optimizer.ZeroGrad([p]);
        model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
        for (int i = 0; i < p.Value.Floats.Length; i++) p.Value.Floats[i] -= 0.5f * p.Grad.Floats[i];
        model.RepackTrainable();
        // The head moved; the lookup still reads the base embedding (PEFT's lm_head copy leaves embed_tokens alone).
        Assert.Equal(baseEmbedding, model.EmbeddingF32());
        Assert.True(TestData.MaxAbsDiff(model.OutputF32(), baseEmbedding) > 1e-3);
        Assert.True(model.Loss(batch) < reference.Loss(batch), "a gradient step on lm_head did not lower the loss");
    }

    [Fact]
    public void ReplaceModules_ThenDetach_RestoresTheBaseExactly()
    {
        var batch = Stories.GoldenBatch();
        using var model = Stories.Load();
        var before = model.Logits(batch);
        int V = model.Config.VocabSize, C = model.Config.HiddenSize;
        var head = TestData.Uniform(V * C, seed: 3, scale: 0.1f);
        model.ReplaceModules("a", null, head);
        Assert.Equal(head, model.OutputF32());
        Assert.NotEqual(before, model.Logits(batch));
        var e = Assert.Throws<Core.UserErrorException>(() => model.ReplaceModules("b", head, null));
        Assert.Contains("both replace", e.Message);
        model.DetachAdapter("a");
        Assert.Equal(before, model.Logits(batch));
    }

    [Fact]
    public void UnknownModule_IsRefusedWithTheSupportedNames()
    {
        using var model = Stories.Load();
        var e = Assert.Throws<Core.UserErrorException>(() => model.TrainModulesToSave(["score"]));
        Assert.Contains("'score'", e.Message);
        Assert.Contains("embed_tokens and lm_head", e.Message);
    }
}
