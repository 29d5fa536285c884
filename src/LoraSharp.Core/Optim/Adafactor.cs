// Adafactor with the semantics of transformers.optimization.Adafactor (Shazeer & Stern 2018). Legend: a parameter
// of rank >= 2 is viewed as [Bt, R, C] (R = second-to-last dim, C = last dim, Bt = product of the rest) and keeps
// factored second moments exp_avg_sq_row [Bt, R] and exp_avg_sq_col [Bt, C]; rank 0/1 keeps exp_avg_sq [n].
// Per step t (float32 elementwise, reductions accumulated in double):
//   lr     = (scale_parameter ? max(eps2, rms(p)) : 1) · (relative_step ? min(warmup_init ? 1e-6·t : 1e-2, 1/sqrt(t)) : lr)
//   β2t    = 1 − t^decay_rate
//   u      = g² + eps1
//   row    = β2t·row + (1−β2t)·mean_C(u);  col = β2t·col + (1−β2t)·mean_R(u)
//   u      = rsqrt(row / mean_R(row)) ⊗ rsqrt(col) · g            (unfactored: v = β2t·v + (1−β2t)·u; u = rsqrt(v)·g)
//   u      = u / max(rms(u)/clip_threshold, 1) · lr
//   m      = β1·m + (1−β1)·u; u = m                                 (only when beta1 is set)
//   p      = p − wd·lr·p − u
// When relative_step is false the learning rate passed to Step is used (as Hugging Face Trainer's optim="adafactor",
// which sets scale_parameter = relative_step = false); when it is true the passed learning rate is ignored.
// Not vectorized: Adafactor is memory-light but reduction-heavy and rarely the bottleneck for LoRA; the three
// passes below run per parameter on the calling thread.
namespace LoraSharp.Core.Optim;

/// <summary>transformers' Adafactor: factored second moments for matrices, optional first moment, relative step sizes.</summary>
public sealed class Adafactor : Optimizer
{
    private const string ExpAvg = "exp_avg", ExpAvgSq = "exp_avg_sq", ExpAvgSqRow = "exp_avg_sq_row", ExpAvgSqCol = "exp_avg_sq_col";

    private double[] _colSum = [];
    private float[] _rowFactor = [];
    private float[] _colFactor = [];

    /// <summary>Creates Adafactor; defaults are transformers' Adafactor class defaults.</summary>
    /// <param name="eps1">Regularizer added to the squared gradient (default 1e-30).</param>
    /// <param name="eps2">Lower bound of the parameter scale (default 1e-3).</param>
    /// <param name="clipThreshold">Threshold of the update's root mean square (default 1.0).</param>
    /// <param name="decayRate">Exponent of the second-moment decay β2t = 1 − t^decayRate (default −0.8).</param>
    /// <param name="beta1">First-moment coefficient; null (default) keeps no first moment.</param>
    /// <param name="weightDecay">Weight decay (default 0).</param>
    /// <param name="scaleParameter">Scale the learning rate by the parameter's RMS (default true).</param>
    /// <param name="relativeStep">Use the time-dependent relative step instead of the given learning rate (default true).</param>
    /// <param name="warmupInit">Warm the relative step up from 1e-6·t (default false; needs relativeStep).</param>
    public Adafactor(double eps1 = 1e-30, double eps2 = 1e-3, double clipThreshold = 1.0, double decayRate = -0.8, double? beta1 = null,
        double weightDecay = 0, bool scaleParameter = true, bool relativeStep = true, bool warmupInit = false)
    {
        if (warmupInit && !relativeStep)
            throw new ArgumentException("Adafactor: warmup_init = true requires relative_step = true (as in transformers).", nameof(warmupInit));
        if (!(eps1 >= 0) || !(eps2 >= 0)) throw new ArgumentOutOfRangeException(nameof(eps1), "Adafactor eps values must be >= 0.");
        if (!(clipThreshold > 0)) throw new ArgumentOutOfRangeException(nameof(clipThreshold), clipThreshold, "clip_threshold must be > 0.");
        if (!(decayRate < 0)) throw new ArgumentOutOfRangeException(nameof(decayRate), decayRate, "decay_rate must be negative (default -0.8).");
        if (beta1 is { } b && !(b >= 0 && b < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), b, "beta1 must be in [0, 1) or null.");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0.");
        Eps1 = eps1; Eps2 = eps2; ClipThreshold = clipThreshold; DecayRate = decayRate; Beta1 = beta1; WeightDecay = weightDecay;
        ScaleParameter = scaleParameter; RelativeStep = relativeStep; WarmupInit = warmupInit;
    }

    /// <inheritdoc />
    public override string Name => "adafactor";

    /// <summary>eps[0]: added to g².</summary>
    public double Eps1 { get; }
    /// <summary>eps[1]: floor of the parameter scale.</summary>
    public double Eps2 { get; }
    /// <summary>Update RMS clip threshold.</summary>
    public double ClipThreshold { get; }
    /// <summary>Second-moment decay exponent.</summary>
    public double DecayRate { get; }
    /// <summary>First-moment coefficient, or null.</summary>
    public double? Beta1 { get; }
    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; }
    /// <summary>Scale the step by the parameter RMS.</summary>
    public bool ScaleParameter { get; }
    /// <summary>Use the relative step size.</summary>
    public bool RelativeStep { get; }
    /// <summary>Warm-up of the relative step.</summary>
    public bool WarmupInit { get; }

    /// <inheritdoc />
    protected override bool IsKnownBuffer(string buffer) => buffer is ExpAvg or ExpAvgSq or ExpAvgSqRow or ExpAvgSqCol;

    /// <inheritdoc />
    protected override void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step)
    {
        double beta2t = 1.0 - Math.Pow(step, DecayRate);
        double rel = RelativeStep ? Math.Min(WarmupInit ? 1e-6 * step : 1e-2, 1.0 / Math.Sqrt(step)) : learningRate;
        foreach (var p in parameters)
        {
            double lr = rel;
            if (ScaleParameter) lr *= Math.Max(Eps2, Rms(p.Value.Floats));
            if (p.Shape.Length >= 2) StepFactored(p, beta2t, lr);
            else StepUnfactored(p, beta2t, lr);
        }
    }

    private void StepUnfactored(Parameter p, double beta2t, double lr)
    {
        Span<float> g = p.Grad.Floats, v = Buffer(p, ExpAvgSq, p.Length), w = p.Value.Floats;
        float b = (float)beta2t, omb = (float)(1 - beta2t), eps1 = (float)Eps1;
        double sumSq = 0;
        for (int i = 0; i < g.Length; i++)
        {
            float vi = v[i] * b + omb * (g[i] * g[i] + eps1);
            v[i] = vi;
            float u = 1f / MathF.Sqrt(vi) * g[i];
            sumSq += (double)u * u;
        }
        var k = Finish(p, sumSq, lr);
        Span<float> m = Beta1 is null ? default : Buffer(p, ExpAvg, p.Length);
        for (int i = 0; i < g.Length; i++) ApplyOne(1f / MathF.Sqrt(v[i]) * g[i], ref w[i], m, i, k);
    }

    private void StepFactored(Parameter p, double beta2t, double lr)
    {
        int C = p.Shape[^1], R = p.Shape[^2];
        if (p.Length == 0) return;
        int Bt = p.Length / (R * C);
        Span<float> g = p.Grad.Floats, w = p.Value.Floats;
        Span<float> row = Buffer(p, ExpAvgSqRow, Bt * R), col = Buffer(p, ExpAvgSqCol, Bt * C);
        if (_colSum.Length < C) { _colSum = new double[C]; _colFactor = new float[C]; }
        if (_rowFactor.Length < R) _rowFactor = new float[R];
        float b = (float)beta2t, omb = (float)(1 - beta2t), eps1 = (float)Eps1;
        // Pass 1: the factored second moments from u = g² + eps1 (row means over C, column means over R).
        for (int bt = 0; bt < Bt; bt++)
        {
            Span<float> rowB = row.Slice(bt * R, R), colB = col.Slice(bt * C, C);
            Span<double> colSum = _colSum.AsSpan(0, C);
            colSum.Clear();
            for (int r = 0; r < R; r++)
            {
                var gr = g.Slice((bt * R + r) * C, C);
                double rowSum = 0;
                for (int c = 0; c < C; c++)
                {
                    float u = gr[c] * gr[c] + eps1;
                    rowSum += u;
                    colSum[c] += u;
                }
                rowB[r] = rowB[r] * b + omb * (float)(rowSum / C);
            }
            for (int c = 0; c < C; c++) colB[c] = colB[c] * b + omb * (float)(colSum[c] / R);
        }
        // Pass 2: RMS of the preconditioned update; pass 3: recompute it (same arithmetic) and apply.
        double sumSq = 0;
        for (int bt = 0; bt < Bt; bt++)
        {
            Factors(row.Slice(bt * R, R), col.Slice(bt * C, C));
            for (int r = 0; r < R; r++)
            {
                var gr = g.Slice((bt * R + r) * C, C);
                float rf = _rowFactor[r];
                for (int c = 0; c < C; c++)
                {
                    float u = rf * _colFactor[c] * gr[c];
                    sumSq += (double)u * u;
                }
            }
        }
        var k = Finish(p, sumSq, lr);
        Span<float> m = Beta1 is null ? default : Buffer(p, ExpAvg, p.Length);
        for (int bt = 0; bt < Bt; bt++)
        {
            Factors(row.Slice(bt * R, R), col.Slice(bt * C, C));
            for (int r = 0; r < R; r++)
            {
                int o = (bt * R + r) * C;
                float rf = _rowFactor[r];
                for (int c = 0; c < C; c++) ApplyOne(rf * _colFactor[c] * g[o + c], ref w[o + c], m, o + c, k);
            }
        }
    }

    // rsqrt(row / mean(row)) and rsqrt(col) for one [R, C] slice, as transformers' _approx_sq_grad.
    private void Factors(ReadOnlySpan<float> rowB, ReadOnlySpan<float> colB)
    {
        double rowTotal = 0;
        foreach (float x in rowB) rowTotal += x;
        float rowMean = (float)(rowTotal / rowB.Length);
        for (int r = 0; r < rowB.Length; r++) _rowFactor[r] = 1f / MathF.Sqrt(rowB[r] / rowMean);
        for (int c = 0; c < colB.Length; c++) _colFactor[c] = 1f / MathF.Sqrt(colB[c]);
    }

    private readonly record struct Final(float Divisor, float Lr, float Decay, bool Wd, bool Momentum, float Beta1, float OneMinusBeta1);

    private Final Finish(Parameter p, double sumSq, double lr)
    {
        float divisor = (float)Math.Max(Math.Sqrt(sumSq / p.Length) / ClipThreshold, 1.0);
        return new Final(divisor, (float)lr, (float)(-WeightDecay * lr), WeightDecay != 0, Beta1 is not null,
            (float)(Beta1 ?? 0), (float)(1 - (Beta1 ?? 0)));
    }

    // u ← u / max(rms/clip, 1) · lr; m ← β1·m + (1−β1)·u, u ← m; p ← p + (−wd·lr)·p − u.
    private static void ApplyOne(float u, ref float w, Span<float> m, int i, in Final k)
    {
        u = u / k.Divisor * k.Lr;
        if (k.Momentum) { m[i] = m[i] * k.Beta1 + k.OneMinusBeta1 * u; u = m[i]; }
        float pi = w;
        if (k.Wd) pi += k.Decay * pi;
        w = pi - u;
    }

    private static double Rms(ReadOnlySpan<float> x)
    {
        if (x.Length == 0) return 0;
        double s = 0;
        foreach (float f in x) s += (double)f * f;
        return Math.Sqrt(s) / Math.Sqrt(x.Length);
    }
}
