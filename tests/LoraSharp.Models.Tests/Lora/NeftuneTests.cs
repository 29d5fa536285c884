using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.Models.Tests.Llama;

namespace LoraSharp.Models.Tests.Lora;

/// <summary>NEFTune: uniform embedding noise alpha/√(L·d), training forward only.</summary>
public class NeftuneTests
{
    [Fact]
    public void Noise_IsUniformWithinAlphaOverSqrtLd_PerPackedSample()
    {
        const int B = 2, T = 40, C = 64;
        const double alpha = 5;
        // row 0: samples of 10 and 30 positions; row 1: one sample of 40
        var seq = new int[B * T];
        for (int t = 0; t < T; t++) { seq[t] = t < 10 ? 0 : 1; seq[T + t] = 2; }
        var batch = new Batch(B, T, new int[B * T], sequenceIds: seq);
        var x = new float[B * T * C];
        LlamaModel.AddNeftuneNoise(batch, x, C, alpha, seed: 17);
        void Check(int row, int start, int length)
        {
            double bound = alpha / Math.Sqrt(length * C), sum = 0, sq = 0, max = 0;
            int n = length * C;
            for (int i = (row * T + start) * C; i < (row * T + start + length) * C; i++)
            {
                sum += x[i]; sq += (double)x[i] * x[i]; max = Math.Max(max, Math.Abs(x[i]));
            }
            Assert.True(max <= bound * (1 + 1e-6), $"row {row} sample at {start}: |noise| {max} above alpha/sqrt(L*d) = {bound}");
            Assert.True(max >= bound * 0.98, $"row {row} sample at {start}: |noise| only reaches {max} of {bound}");
            Assert.True(Math.Abs(sum / n) < 4 * bound / Math.Sqrt(3 * n), $"mean {sum / n} is not ~0");
            double variance = sq / n, expected = bound * bound / 3;   // U(-a, a) has variance a²/3
            Assert.True(Math.Abs(variance - expected) < 0.1 * expected, $"variance {variance} vs {expected}");
        }
        Check(0, 0, 10);
        Check(0, 10, 30);
        Check(1, 0, 40);
        // alpha 0 adds nothing; another seed gives other noise
        var y = new float[x.Length];
        LlamaModel.AddNeftuneNoise(batch, y, C, 0, seed: 17);
        Assert.All(y, v => Assert.Equal(0f, v));
        LlamaModel.AddNeftuneNoise(batch, y, C, alpha, seed: 18);
        Assert.NotEqual(x, y);
    }

    [Fact]
    public void TrainingForward_IsNoisyAndSeeded_EvaluationIsClean()
    {
        using var model = Stories.Load();
        LoraInjector.Attach(model, new LoraSettings { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] }, seed: 1);
        var batch = Stories.GoldenBatch();
        var parameters = model.TrainableParameters();
        double Train(ulong seed)
        {
            Optimizer.ZeroGrad(parameters);
            return model.ForwardBackward(batch, 1f, seed, out _);
        }
        double clean = Train(3), cleanEval = model.Loss(batch);
        model.NeftuneNoiseAlpha = 5;
        double noisy = Train(3), noisyAgain = Train(3), other = Train(4);
        Assert.NotEqual(clean, noisy);
        Assert.Equal(noisy, noisyAgain);   // the same micro-batch seed gives the same noise
        Assert.NotEqual(noisy, other);
        Assert.Equal(cleanEval, model.Loss(batch));   // evaluation never sees the noise
        Assert.Throws<ArgumentOutOfRangeException>(() => model.NeftuneNoiseAlpha = -1);
    }
}
