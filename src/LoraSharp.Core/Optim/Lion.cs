// Lion with lion-pytorch semantics (decoupled weight decay p *= 1 − lr·wd, sign of the interpolated momentum).
// Defaults are lion-pytorch's: betas (0.9, 0.99), weight_decay 0. The momentum buffer is named "exp_avg" as there.
// Not here: lion-pytorch's decoupled_weight_decay option (wd divided by the initial lr) and its Triton kernel.
namespace LoraSharp.Core.Optim;

/// <summary>
/// Lion: <c>p *= 1 − lr·wd; p −= lr·sign(β1·m + (1−β1)·g); m = β2·m + (1−β2)·g</c>.
/// Typical learning rates are 3–10× smaller than AdamW's, weight decay 3–10× larger.
/// </summary>
public sealed class Lion : Optimizer
{
    private const string ExpAvg = "exp_avg";
    private readonly ElementwiseSlots _slots = new();

    /// <summary>Creates Lion.</summary>
    /// <param name="beta1">β1 for the update direction (default 0.9).</param>
    /// <param name="beta2">β2 for the momentum (default 0.99).</param>
    /// <param name="weightDecay">Decoupled weight decay (default 0).</param>
    public Lion(double beta1 = 0.9, double beta2 = 0.99, double weightDecay = 0)
    {
        if (!(beta1 >= 0 && beta1 <= 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1].");
        if (!(beta2 >= 0 && beta2 <= 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1].");
        if (!(weightDecay >= 0) || !double.IsFinite(weightDecay))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be a finite number >= 0.");
        Beta1 = beta1; Beta2 = beta2; WeightDecay = weightDecay;
    }

    /// <inheritdoc />
    public override string Name => "lion";

    /// <summary>β1.</summary>
    public double Beta1 { get; }
    /// <summary>β2.</summary>
    public double Beta2 { get; }
    /// <summary>Decoupled weight decay.</summary>
    public double WeightDecay { get; }

    /// <inheritdoc />
    protected override void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step)
    {
        var level = Simd.Level;
        _slots.Reset(parameters.Count);
        for (int i = 0; i < parameters.Count; i++) _slots.Set(i, parameters[i], Buffer(parameters[i], ExpAvg, parameters[i].Length));
        var work = new Work { Slots = _slots, C = LionKernel.Coefficients.For(learningRate, Beta1, Beta2, WeightDecay) };
        ElementwiseDriver.Run(ref work, _slots.Lengths, _slots.Count, level);
    }

    /// <inheritdoc />
    protected override bool IsKnownBuffer(string buffer) => buffer == ExpAvg;

    private struct Work : IElementwiseKernel
    {
        public ElementwiseSlots Slots;
        public LionKernel.Coefficients C;

        public void Apply(int slot, int start, int count, SimdLevel level)
            => LionKernel.Update(Slots.Grad(slot, start, count), Slots.Value(slot, start, count), Slots.S0(slot, start, count), C, level);
    }
}
