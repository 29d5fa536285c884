// Each optimizer against an independent double-precision implementation of its torch / lion-pytorch formulas,
// written here from the papers and the torch docs, over three steps with a new gradient each step.
using LoraSharp.Core.Optim;

namespace LoraSharp.Core.Tests.Optim;

public class OptimizerReferenceTests
{
    private static readonly int[][] Shapes = [[3, 17], [33], [5, 4, 3], [1]];
    private static readonly double[] Lrs = [1e-2, 5e-3, 2e-3];

    /// <summary>Runs three steps of <paramref name="opt"/> and of the double reference <paramref name="step"/> and compares.</summary>
    private static void Check(Optimizer opt, Action<int, double, double[], double[], Dictionary<string, double[]>> step, double tol)
    {
        using var set = ParamSet.Random(11, Shapes);
        var values = set.Params.Select(p => p.Value.Floats.ToArray().Select(f => (double)f).ToArray()).ToList();
        var states = set.Params.Select(_ => new Dictionary<string, double[]>()).ToList();
        for (int t = 1; t <= 3; t++)
        {
            set.NewGrads(t);
            for (int i = 0; i < set.Params.Count; i++)
                step(t, Lrs[t - 1], values[i], set.Params[i].Grad.Floats.ToArray().Select(f => (double)f).ToArray(), states[i]);
            opt.Step(set.Params, Lrs[t - 1]);
            Assert.Equal(t, opt.StepCount);
            for (int i = 0; i < set.Params.Count; i++)
            {
                var got = set.Params[i].Value.Floats;
                for (int j = 0; j < got.Length; j++)
                    Assert.True(Math.Abs(got[j] - values[i][j]) <= tol * Math.Max(1, Math.Abs(values[i][j])),
                        $"step {t}, {set.Params[i].Name}[{j}]: {got[j]} vs reference {values[i][j]}");
            }
        }
    }

    private static double[] Get(Dictionary<string, double[]> s, string k, int n) => s.TryGetValue(k, out var a) ? a : s[k] = new double[n];

    [Fact]
    public void AdamW_ThreeSteps_WithWeightDecay_MatchesDoubleReference()
    {
        const double b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.1;
        Check(new AdamW(b1, b2, eps, wd), (t, lr, p, g, s) =>
        {
            var m = Get(s, "m", p.Length); var v = Get(s, "v", p.Length);
            for (int i = 0; i < p.Length; i++)
            {
                p[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                double mHat = m[i] / (1 - Math.Pow(b1, t)), vHat = v[i] / (1 - Math.Pow(b2, t));
                p[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        }, 2e-6);
    }

    [Fact]
    public void Adam_ThreeSteps_WithL2WeightDecay_MatchesDoubleReference()
    {
        const double b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.05;
        Check(new Adam(b1, b2, eps, wd), (t, lr, p, g, s) =>
        {
            var m = Get(s, "m", p.Length); var v = Get(s, "v", p.Length);
            for (int i = 0; i < p.Length; i++)
            {
                double gi = g[i] + wd * p[i];
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
                p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
            }
        }, 2e-6);
    }

    [Theory]
    [InlineData(0.0, 0.0, 0.0, false)]
    [InlineData(0.9, 0.0, 0.01, false)]
    [InlineData(0.9, 0.3, 0.0, false)]
    [InlineData(0.9, 0.0, 0.02, true)]
    public void Sgd_ThreeSteps_MatchesDoubleReference(double mu, double dampening, double wd, bool nesterov)
    {
        Check(new Sgd(mu, dampening, wd, nesterov), (t, lr, p, g, s) =>
        {
            var buf = Get(s, "buf", p.Length);
            for (int i = 0; i < p.Length; i++)
            {
                double d = g[i] + wd * p[i];
                if (mu != 0)
                {
                    buf[i] = t == 1 ? d : mu * buf[i] + (1 - dampening) * d;
                    d = nesterov ? d + mu * buf[i] : buf[i];
                }
                p[i] -= lr * d;
            }
        }, 1e-6);
    }

    [Fact]
    public void Lion_ThreeSteps_WithWeightDecay_MatchesDoubleReference()
    {
        const double b1 = 0.9, b2 = 0.99, wd = 0.1;
        Check(new Lion(b1, b2, wd), (t, lr, p, g, s) =>
        {
            var m = Get(s, "m", p.Length);
            for (int i = 0; i < p.Length; i++)
            {
                p[i] *= 1 - lr * wd;
                p[i] -= lr * Math.Sign(b1 * m[i] + (1 - b1) * g[i]);
                m[i] = b2 * m[i] + (1 - b2) * g[i];
            }
        }, 1e-6);
    }
}
