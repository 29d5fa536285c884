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
// The three passes (moments, update RMS, apply) run per parameter on the calling thread with the row kernels of
// AdafactorKernel (vectorized, scalar twins); the second-moment update of unfactored parameters is scalar.
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
        var level = Simd.Level;
        double beta2t = 1.0 - Math.Pow(step, DecayRate);
        double rel = RelativeStep ? Math.Min(WarmupInit ? 1e-6 * step : 1e-2, 1.0 / Math.Sqrt(step)) : learningRate;
        foreach (var p in parameters)
        {
            if (p.Length == 0) continue;
            double lr = rel;
            if (ScaleParameter) lr *= Math.Max(Eps2, Math.Sqrt(GradientClipping.SumOfSquares(p.Value.Floats, level) / p.Length));
            if (p.Shape.Length >= 2) StepFactored(p, beta2t, lr, level);
            else StepUnfactored(p, beta2t, lr, level);
        }
    }

    private const int Chunk = 1024;

    private void StepUnfactored(Parameter p, double beta2t, double lr, SimdLevel level)
    {
        Span<float> g = p.Grad.Floats, v = Buffer(p, ExpAvgSq, p.Length), w = p.Value.Floats;
        float b = (float)beta2t, omb = (float)(1 - beta2t), eps1 = (float)Eps1;
        if (_colFactor.Length < Chunk) _colFactor = new float[Chunk];
        for (int i = 0; i < g.Length; i++) v[i] = v[i] * b + omb * (g[i] * g[i] + eps1);
        // u = rsqrt(v)·g, computed chunk by chunk as factors rsqrt(v) with a row factor of 1 (exact).
        double sumSq = 0;
        for (int i = 0; i < g.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, g.Length - i);
            var f = RsqrtInto(v.Slice(i, n));
            sumSq += AdafactorKernel.PreconditionedSquares(g.Slice(i, n), f, 1f, level);
        }
        var k = Finish(p, sumSq, lr);
        Span<float> m = Beta1 is null ? default : Buffer(p, ExpAvg, p.Length);
        for (int i = 0; i < g.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, g.Length - i);
            var f = RsqrtInto(v.Slice(i, n));
            AdafactorKernel.Apply(g.Slice(i, n), f, 1f, w.Slice(i, n), m.IsEmpty ? default : m.Slice(i, n), k, level);
        }
    }

    private ReadOnlySpan<float> RsqrtInto(ReadOnlySpan<float> v)
    {
        var f = _colFactor.AsSpan(0, v.Length);
        for (int i = 0; i < v.Length; i++) f[i] = 1f / MathF.Sqrt(v[i]);
        return f;
    }

    private void StepFactored(Parameter p, double beta2t, double lr, SimdLevel level)
    {
        int C = p.Shape[^1], R = p.Shape[^2];
        int Bt = p.Length / (R * C);
        Span<float> g = p.Grad.Floats, w = p.Value.Floats;
        Span<float> row = Buffer(p, ExpAvgSqRow, Bt * R), col = Buffer(p, ExpAvgSqCol, Bt * C);
        if (_colSum.Length < C) _colSum = new double[C];
        if (_colFactor.Length < C) _colFactor = new float[C];
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
                double rowSum = AdafactorKernel.AccumulateSquares(g.Slice((bt * R + r) * C, C), eps1, colSum, level);
                rowB[r] = rowB[r] * b + omb * (float)(rowSum / C);
            }
            for (int c = 0; c < C; c++) colB[c] = colB[c] * b + omb * (float)(colSum[c] / R);
        }
        // Pass 2: RMS of the preconditioned update; pass 3: recompute it (same arithmetic) and apply.
        double sumSq = 0;
        for (int bt = 0; bt < Bt; bt++)
        {
            Factors(row.Slice(bt * R, R), col.Slice(bt * C, C));
            var cf = _colFactor.AsSpan(0, C);
            for (int r = 0; r < R; r++)
                sumSq += AdafactorKernel.PreconditionedSquares(g.Slice((bt * R + r) * C, C), cf, _rowFactor[r], level);
        }
        var k = Finish(p, sumSq, lr);
        Span<float> m = Beta1 is null ? default : Buffer(p, ExpAvg, p.Length);
        for (int bt = 0; bt < Bt; bt++)
        {
            Factors(row.Slice(bt * R, R), col.Slice(bt * C, C));
            var cf = _colFactor.AsSpan(0, C);
            for (int r = 0; r < R; r++)
            {
                int o = (bt * R + r) * C;
                AdafactorKernel.Apply(g.Slice(o, C), cf, _rowFactor[r], w.Slice(o, C), m.IsEmpty ? default : m.Slice(o, C), k, level);
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

    private AdafactorKernel.Coefficients Finish(Parameter p, double sumSq, double lr) => new()
    {
        Divisor = (float)Math.Max(Math.Sqrt(sumSq / p.Length) / ClipThreshold, 1.0),
        Lr = (float)lr,
        Decay = (float)(-WeightDecay * lr),
        WeightDecay = WeightDecay != 0,
        Momentum = Beta1 is not null,
        Beta1 = (float)(Beta1 ?? 0),
        OneMinusBeta1 = (float)(1 - (Beta1 ?? 0)),
    };
}
