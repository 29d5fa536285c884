// AdamW with torch.optim.AdamW semantics (decoupled weight decay, bias corrections), state buffers named as torch
// names them (exp_avg, exp_avg_sq). Not here: amsgrad, maximize. Defaults are torch's: betas (0.9, 0.999),
// eps 1e-8, weight_decay 0.01.
namespace LoraSharp.Core.Optim;

/// <summary>
/// torch.optim.AdamW: per step t, <c>p *= 1 − lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// p −= lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)</c>.
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly ElementwiseSlots _slots = new();

    /// <summary>Creates AdamW.</summary>
    /// <param name="beta1">β1, decay of the first moment (torch default 0.9).</param>
    /// <param name="beta2">β2, decay of the second moment (torch default 0.999).</param>
    /// <param name="eps">Added to the denominator (torch default 1e-8).</param>
    /// <param name="weightDecay">Decoupled weight decay (torch default 0.01; Hugging Face Trainer passes its weight_decay, default 0).</param>
    public AdamW(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
    {
        AdamChecks.Validate(beta1, beta2, eps, weightDecay);
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
    }

    /// <inheritdoc />
    public override string Name => "adamw";

    /// <summary>β1.</summary>
    public double Beta1 { get; }
    /// <summary>β2.</summary>
    public double Beta2 { get; }
    /// <summary>eps.</summary>
    public double Eps { get; }
    /// <summary>Decoupled weight decay.</summary>
    public double WeightDecay { get; }

    /// <inheritdoc />
    protected override void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step)
    {
        var c = AdamKernel.Coefficients.For(learningRate, Beta1, Beta2, Eps, decoupledWeightDecay: WeightDecay, l2WeightDecay: 0, step);
        AdamChecks.Run(this, _slots, parameters, c);
    }

    /// <inheritdoc />
    protected override bool IsKnownBuffer(string buffer) => buffer is AdamChecks.ExpAvg or AdamChecks.ExpAvgSq;
}
