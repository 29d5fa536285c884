// Adafactor against a plain double implementation of transformers.optimization.Adafactor's formulas (factored
// second moments for rank >= 2, relative step, parameter scaling, update clipping, optional β1, weight decay).
using LoraSharp.Core.Optim;

namespace LoraSharp.Core.Tests.Optim;

public class AdafactorTests
{
    private sealed record Opts(bool ScaleParameter, bool RelativeStep, bool WarmupInit, double? Beta1, double WeightDecay, double Clip);

    private sealed class RefState
    {
        public double[]? Row, Col, V, M;
    }

    // transformers' Adafactor.step for one parameter, in double.
    private static void ReferenceStep(int t, double lrIn, double[] p, double[] g, int[] shape, RefState s, Opts o)
    {
        const double eps1 = 1e-30, eps2 = 1e-3, decay = -0.8;
        int n = p.Length;
        double rel = o.RelativeStep ? Math.Min(o.WarmupInit ? 1e-6 * t : 1e-2, 1 / Math.Sqrt(t)) : lrIn;
        double scale = o.ScaleParameter ? Math.Max(eps2, Math.Sqrt(p.Sum(x => x * x) / n)) : 1;
        double lr = scale * rel;
        double beta2t = 1 - Math.Pow(t, decay);
        var u = new double[n];
        if (shape.Length >= 2)
        {
            int C = shape[^1], R = shape[^2], Bt = n / (R * C);
            s.Row ??= new double[Bt * R];
            s.Col ??= new double[Bt * C];
            for (int b = 0; b < Bt; b++)
            {
                for (int r = 0; r < R; r++)
                {
                    double mean = 0;
                    for (int c = 0; c < C; c++) mean += g[(b * R + r) * C + c] * g[(b * R + r) * C + c] + eps1;
                    s.Row[b * R + r] = beta2t * s.Row[b * R + r] + (1 - beta2t) * mean / C;
                }
                for (int c = 0; c < C; c++)
                {
                    double mean = 0;
                    for (int r = 0; r < R; r++) mean += g[(b * R + r) * C + c] * g[(b * R + r) * C + c] + eps1;
                    s.Col[b * C + c] = beta2t * s.Col[b * C + c] + (1 - beta2t) * mean / R;
                }
                double rowMean = 0;
                for (int r = 0; r < R; r++) rowMean += s.Row[b * R + r] / R;
                for (int r = 0; r < R; r++)
                    for (int c = 0; c < C; c++)
                    {
                        int i = (b * R + r) * C + c;
                        u[i] = 1 / Math.Sqrt(s.Row[b * R + r] / rowMean) * (1 / Math.Sqrt(s.Col[b * C + c])) * g[i];
                    }
            }
        }
        else
        {
            s.V ??= new double[n];
            for (int i = 0; i < n; i++)
            {
                s.V[i] = beta2t * s.V[i] + (1 - beta2t) * (g[i] * g[i] + eps1);
                u[i] = g[i] / Math.Sqrt(s.V[i]);
            }
        }
        double rmsU = Math.Sqrt(u.Sum(x => x * x) / n);
        double div = Math.Max(rmsU / o.Clip, 1);
        for (int i = 0; i < n; i++) u[i] = u[i] / div * lr;
        if (o.Beta1 is { } b1)
        {
            s.M ??= new double[n];
            for (int i = 0; i < n; i++) { s.M[i] = b1 * s.M[i] + (1 - b1) * u[i]; u[i] = s.M[i]; }
        }
        for (int i = 0; i < n; i++) p[i] = p[i] - o.WeightDecay * lr * p[i] - u[i];
    }

    [Theory]
    [InlineData(false, false, false, null, 0.0, 1.0)]
    [InlineData(true, true, false, null, 0.0, 1.0)]
    [InlineData(true, true, true, 0.9, 0.01, 1.0)]
    [InlineData(false, false, false, 0.9, 0.1, 0.3)]
    [InlineData(true, false, false, null, 0.0, 0.5)]
    public void ThreeSteps_MatchTransformersFormulasInDouble(bool scale, bool relative, bool warmup, double? beta1, double wd, double clip)
    {
        foreach (var level in new[] { SimdLevel.Scalar, SimdLevel.V128, Simd.Hardware })
        {
            using var _ = Simd.Force(level);
            RunThreeSteps(new Opts(scale, relative, warmup, beta1, wd, clip));
        }
    }

    private static void RunThreeSteps(Opts o)
    {
        int[][] shapes = [[7, 5], [33], [3, 4, 6], [1, 1], [1], [2, 1030], [2500]];   // 2500: unfactored chunks of 1024 + tail
        using var set = ParamSet.Random(5, shapes);
        var opt = new Adafactor(clipThreshold: o.Clip, beta1: o.Beta1, weightDecay: o.WeightDecay, scaleParameter: o.ScaleParameter,
            relativeStep: o.RelativeStep, warmupInit: o.WarmupInit);
        var values = set.Params.Select(p => p.Value.Floats.ToArray().Select(f => (double)f).ToArray()).ToList();
        var states = shapes.Select(_ => new RefState()).ToList();
        double[] lrs = [1e-2, 3e-2, 5e-3];
        for (int t = 1; t <= 3; t++)
        {
            set.NewGrads(t);
            for (int i = 0; i < shapes.Length; i++)
                ReferenceStep(t, lrs[t - 1], values[i], set.Params[i].Grad.Floats.ToArray().Select(f => (double)f).ToArray(), shapes[i], states[i], o);
            opt.Step(set.Params, lrs[t - 1]);
            for (int i = 0; i < shapes.Length; i++)
            {
                var got = set.Params[i].Value.Floats.ToArray();
                for (int j = 0; j < got.Length; j++)
                    Assert.True(Math.Abs(got[j] - values[i][j]) <= 2e-6 * Math.Max(1, Math.Abs(values[i][j])),
                        $"{Simd.Level}, step {t}, shape [{string.Join(",", shapes[i])}] element {j}: {got[j]} vs {values[i][j]}");
            }
        }
        // The parameters moved (the test would pass vacuously otherwise).
        using var fresh = ParamSet.Random(5, shapes);
        Assert.NotEqual(fresh.Params[0].Value.Floats.ToArray(), set.Params[0].Value.Floats.ToArray());
    }

    [Fact]
    public void Factored_KeepsRowAndColumnStatesOnly()
    {
        using var set = ParamSet.Random(3, [4, 6], [5]);
        var opt = new Adafactor(relativeStep: false, scaleParameter: false, beta1: 0.9);
        opt.Step(set.Params, 1e-2);
        var state = opt.ExportState();
        Assert.Equal(4, state.Buffers["layers.0.weight.exp_avg_sq_row"].Length);
        Assert.Equal(6, state.Buffers["layers.0.weight.exp_avg_sq_col"].Length);
        Assert.False(state.Buffers.ContainsKey("layers.0.weight.exp_avg_sq"));
        Assert.Equal(5, state.Buffers["layers.1.weight.exp_avg_sq"].Length);
        Assert.Equal(24, state.Buffers["layers.0.weight.exp_avg"].Length);
    }

    [Fact]
    public void WarmupInit_WithoutRelativeStep_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => new Adafactor(relativeStep: false, warmupInit: true));
        Assert.Contains("relative_step", e.Message);
    }
}
