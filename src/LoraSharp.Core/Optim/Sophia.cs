// Sophia-G (Liu et al. 2023) as the authors' SophiaG: decoupled weight decay p *= 1 − lr·wd, momentum
// m = β1·m + (1−β1)·g, and a per-coordinate clipped Newton-like step p −= lr·clamp(m / max(γ·h, ε), −1, 1), with h
// an EMA of the Gauss-Newton-Bartlett estimate B·ĝ⊙ĝ refreshed every k steps by the caller (UpdateHessian), ĝ the
// gradient of the mean loss on labels sampled from the model's own softmax. Buffers "exp_avg" and "hessian" as there.
// Until the first UpdateHessian h = 0, so the step is lr·sign(m) (the authors' code behaves the same).
// Deviation from the authors' code, which divides by γ·B·EMA(ĝ²) + 1e-15: h keeps B inside the EMA (the paper's
// ĥ = B·ĝ⊙ĝ) and the denominator is max(γ·h, ε) (the paper's formula); the two agree except for h within ε of 0.
// Not here: the estimator (Training's trainer samples the labels and runs the extra backward), Sophia-H (Hutchinson).
namespace LoraSharp.Core.Optim;

/// <summary>
/// Sophia-G: <c>p *= 1 − lr·wd; m = β1·m + (1−β1)·g; p −= lr·clamp(m / max(γ·h, ε), −1, 1)</c>; every k steps
/// <see cref="UpdateHessian"/> sets <c>h = β2·h + (1−β2)·B·ĝ²</c>.
/// </summary>
public sealed class Sophia : Optimizer
{
    /// <summary>The momentum buffer's name.</summary>
    public const string ExpAvg = "exp_avg";
    /// <summary>The Hessian EMA buffer's name.</summary>
    public const string Hessian = "hessian";

    private readonly ElementwiseSlots _slots = new();

    /// <summary>Creates Sophia-G (defaults: the authors' SophiaG and GPT-2 recipe).</summary>
    /// <param name="beta1">β1 of the momentum (default 0.965).</param>
    /// <param name="beta2">β2 of the Hessian EMA (default 0.99).</param>
    /// <param name="gamma">γ, the authors' rho (default 0.04): larger means smaller, more often unclipped steps.</param>
    /// <param name="eps">ε, the smallest denominator (default 1e-15 as the authors' code).</param>
    /// <param name="weightDecay">Decoupled weight decay (default 0.1, the authors'; Hugging Face Trainer passes its weight_decay).</param>
    public Sophia(double beta1 = 0.965, double beta2 = 0.99, double gamma = 0.04, double eps = 1e-15, double weightDecay = 0.1)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1).");
        if (!(gamma > 0) || !double.IsFinite(gamma)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "gamma (rho) must be a finite number > 0.");
        if (!(eps > 0) || !double.IsFinite(eps) || (float)eps == 0) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be > 0 and representable as a float (>= 1e-45).");
        if (!(weightDecay >= 0) || !double.IsFinite(weightDecay))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be a finite number >= 0.");
        Beta1 = beta1; Beta2 = beta2; Gamma = gamma; Eps = eps; WeightDecay = weightDecay;
    }

    /// <inheritdoc />
    public override string Name => "sophia";

    /// <summary>β1.</summary>
    public double Beta1 { get; }
    /// <summary>β2.</summary>
    public double Beta2 { get; }
    /// <summary>γ (rho).</summary>
    public double Gamma { get; }
    /// <summary>ε.</summary>
    public double Eps { get; }
    /// <summary>Decoupled weight decay.</summary>
    public double WeightDecay { get; }

    /// <summary>Hessian updates done so far (not checkpointed: the trainer's step decides when the next one is due).</summary>
    public int HessianUpdates { get; private set; }

    /// <inheritdoc />
    protected override void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step)
    {
        var level = Simd.Level;
        _slots.Reset(parameters.Count);
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            _slots.Set(i, p, Buffer(p, ExpAvg, p.Length), Buffer(p, Hessian, p.Length));
        }
        var work = new StepWork { Slots = _slots, C = SophiaKernel.Coefficients.For(learningRate, Beta1, Gamma, Eps, WeightDecay) };
        ElementwiseDriver.Run(ref work, _slots.Lengths, _slots.Count, level);
    }

    /// <summary>
    /// The Gauss-Newton-Bartlett update <c>h = β2·h + (1−β2)·B·ĝ²</c> of every parameter, where each parameter's
    /// gradient holds ĝ, the gradient of the MEAN cross-entropy over <paramref name="batchTokens"/> target tokens whose
    /// labels were sampled from the model's own softmax. Reads the gradients only; does not count as a step.
    /// </summary>
    public void UpdateHessian(IReadOnlyList<Parameter> parameters, long batchTokens)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegative(batchTokens);
        var level = Simd.Level;
        _slots.Reset(parameters.Count);
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            _slots.Set(i, p, Buffer(p, Hessian, p.Length));
        }
        var work = new HessianWork { Slots = _slots, C = SophiaKernel.HessianCoefficients.For(Beta2, batchTokens) };
        ElementwiseDriver.Run(ref work, _slots.Lengths, _slots.Count, level);
        HessianUpdates++;
    }

    /// <inheritdoc />
    protected override bool IsKnownBuffer(string buffer) => buffer is ExpAvg or Hessian;

    private struct StepWork : IElementwiseKernel
    {
        public ElementwiseSlots Slots;
        public SophiaKernel.Coefficients C;

        public void Apply(int slot, int start, int count, SimdLevel level)
            => SophiaKernel.Update(Slots.Grad(slot, start, count), Slots.Value(slot, start, count), Slots.S0(slot, start, count), Slots.S1(slot, start, count), C, level);
    }

    private struct HessianWork : IElementwiseKernel
    {
        public ElementwiseSlots Slots;
        public SophiaKernel.HessianCoefficients C;

        public void Apply(int slot, int start, int count, SimdLevel level)
            => SophiaKernel.UpdateHessian(Slots.Grad(slot, start, count), Slots.S0(slot, start, count), C, level);
    }
}
