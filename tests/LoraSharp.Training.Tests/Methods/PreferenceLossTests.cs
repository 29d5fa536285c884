// DPO (sigmoid, IPO) and ORPO against the float64 PyTorch reference of tests/references/methods_reference.py: the
// formulas on random log-probabilities, and a DPO step on stories260K (policy = golden LoRA, reference = adapter off).
using System.Text.Json;
using LoraSharp.Core.Optim;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;
using LoraSharp.Training.Preference;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Methods;

public class PreferenceLossTests
{
    [Fact]
    public void Losses_AndGradients_MatchFloat64Reference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(MethodReferences.Path("preference_losses.json")));
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            double[] D(string k) => c.GetProperty(k).EnumerateArray().Select(v => v.GetDouble()).ToArray();
            int[] I(string k) => c.GetProperty(k).EnumerateArray().Select(v => v.GetInt32()).ToArray();
            string kind = c.GetProperty("kind").GetString()!;
            double beta = c.GetProperty("beta").GetDouble(), pairScale = c.GetProperty("pair_scale").GetDouble(), tokenScale = c.GetProperty("token_scale").GetDouble();
            var objective = kind == "orpo" ? PreferenceObjective.Orpo : PreferenceLoss.Parse("dpo", kind);
            var pc = D("pc");
            var dc = new double[pc.Length];
            var dr = new double[pc.Length];
            var sums = PreferenceLoss.Compute(objective, beta, pc, D("pr"), D("rc"), D("rr"), I("nc"), I("nr"), pairScale, tokenScale, dc, dr);
            double expected = c.GetProperty("loss").GetDouble();
            Assert.True(Math.Abs(sums.Loss * pairScale - expected) <= 1e-12 * Math.Abs(expected), $"{kind} β {beta}: loss {sums.Loss * pairScale:R} vs {expected:R}");
            var edc = D("dpc");
            var edr = D("dpr");
            for (int i = 0; i < pc.Length; i++)
            {
                Assert.True(Math.Abs(dc[i] - edc[i]) <= 1e-10 * Math.Abs(edc[i]) + 1e-15, $"{kind} β {beta}: d/dπ_c[{i}] {dc[i]:R} vs {edc[i]:R}");
                Assert.True(Math.Abs(dr[i] - edr[i]) <= 1e-10 * Math.Abs(edr[i]) + 1e-15, $"{kind} β {beta}: d/dπ_r[{i}] {dr[i]:R} vs {edr[i]:R}");
            }
            n++;
        }
        Assert.Equal(6, n);
    }

    [Fact]
    public void DpoStep_OnStories_MatchesFloat64Reference()
    {
        using var reference = SafetensorsFile.Open(MethodReferences.Path("dpo_stories.safetensors"));
        var meta = reference.Metadata;
        double beta = double.Parse(meta["beta"], System.Globalization.CultureInfo.InvariantCulture);
        var pairs = JsonSerializer.Deserialize<List<Dictionary<string, int[]>>>(meta["pairs"])!;
        var expectedPolicy = JsonSerializer.Deserialize<double[]>(meta["policy_logps"])!;
        var expectedReference = JsonSerializer.Deserialize<double[]>(meta["reference_logps"])!;

        using var model = AdapterFixtures.LoadModel();
        LoraWeights_AttachGolden(model);
        var prefPairs = pairs.Select(p => PreferencePair.FromTokens(p["prompt"], p["chosen"], p["rejected"])).ToList();
        var batch = PreferencePair.PackedBatch(prefPairs);

        double[] refLogps;
        using (model.AdaptersOff()) refLogps = model.SequenceLogProbs(batch, out _);
        for (int i = 0; i < 4; i++) Assert.Equal(expectedReference[i], refLogps[i], 1e-5 * Math.Abs(expectedReference[i]));

        var parameters = model.TrainableParameters();
        Optimizer.ZeroGrad(parameters);
        PreferenceSums? sums = null;
        var logps = model.ForwardBackwardSequences(batch, 0, (lp, counts, grad) =>
        {
            var dc = new double[2];
            var dr = new double[2];
            sums = PreferenceLoss.Compute(PreferenceObjective.DpoSigmoid, beta, [lp[0], lp[2]], [lp[1], lp[3]], [refLogps[0], refLogps[2]], [refLogps[1], refLogps[3]],
                [counts[0], counts[2]], [counts[1], counts[3]], 0.5, 0, dc, dr);
            grad[0] = dc[0]; grad[1] = dr[0]; grad[2] = dc[1]; grad[3] = dr[1];
        });
        for (int i = 0; i < 4; i++) Assert.Equal(expectedPolicy[i], logps[i], 1e-5 * Math.Abs(expectedPolicy[i]));
        double expectedLoss = double.Parse(meta["loss_f64"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(expectedLoss, sums!.Loss * 0.5, 1e-5 * expectedLoss);
        foreach (var p in parameters)
        {
            using var g = reference.GetTensor(p.Name + ".grad");
            MethodReferences.AssertRelative(p.Grad.Floats, g.Floats.ToArray().Select(v => (double)v).ToArray(), 1e-4, p.Name);
        }
    }

    private static void LoraWeights_AttachGolden(LlamaModel model) =>
        LoraSharp.Training.Adapters.LoraWeights.ReadPeft(AdapterFixtures.LoraFolder).AttachTo(model, trainable: true);
}
