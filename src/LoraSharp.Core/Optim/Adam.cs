// Adam with torch.optim.Adam semantics: weight decay is L2 regularisation added to the gradient (g += wd·p) before
// the moments, unlike AdamW's decoupled decay. Defaults are torch's: betas (0.9, 0.999), eps 1e-8, weight_decay 0.
namespace LoraSharp.Core.Optim;

/// <summary>
/// torch.optim.Adam: per step t, <c>g += wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// p −= lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)</c>.
/// </summary>
public sealed class Adam : Optimizer
{
    private readonly ElementwiseSlots _slots = new();

    /// <summary>Creates Adam.</summary>
    /// <param name="beta1">β1 (torch default 0.9).</param>
    /// <param name="beta2">β2 (torch default 0.999).</param>
    /// <param name="eps">Added to the denominator (torch default 1e-8).</param>
    /// <param name="weightDecay">L2 penalty added to the gradient (torch default 0).</param>
    public Adam(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        AdamChecks.Validate(beta1, beta2, eps, weightDecay);
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
    }

    /// <inheritdoc />
    public override string Name => "adam";

    /// <summary>β1.</summary>
    public double Beta1 { get; }
    /// <summary>β2.</summary>
    public double Beta2 { get; }
    /// <summary>eps.</summary>
    public double Eps { get; }
    /// <summary>L2 weight decay added to the gradient.</summary>
    public double WeightDecay { get; }

    /// <inheritdoc />
    protected override void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step)
    {
        var c = AdamKernel.Coefficients.For(learningRate, Beta1, Beta2, Eps, decoupledWeightDecay: 0, l2WeightDecay: WeightDecay, step);
        AdamChecks.Run(this, _slots, parameters, c);
    }

    /// <inheritdoc />
    protected override bool IsKnownBuffer(string buffer) => buffer is AdamChecks.ExpAvg or AdamChecks.ExpAvgSq;
}
