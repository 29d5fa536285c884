// SGD with torch.optim.SGD semantics: L2 weight decay on the gradient, momentum with dampening, Nesterov. The
// momentum buffer ("momentum_buffer" as torch names it) starts as the first step's gradient, as in torch.
// Not here: maximize.
namespace LoraSharp.Core.Optim;

/// <summary>
/// torch.optim.SGD: <c>d = g + wd·p; buf = μ·buf + (1−dampening)·d (buf = d on the first step);
/// d = nesterov ? d + μ·buf : buf; p −= lr·d</c>.
/// </summary>
public sealed class Sgd : Optimizer
{
    private const string MomentumBuffer = "momentum_buffer";
    private readonly ElementwiseSlots _slots = new();

    /// <summary>Creates SGD.</summary>
    /// <param name="momentum">Momentum factor μ (torch default 0: no buffer).</param>
    /// <param name="dampening">Dampening of the momentum (torch default 0).</param>
    /// <param name="weightDecay">L2 penalty added to the gradient (torch default 0).</param>
    /// <param name="nesterov">Nesterov momentum; needs momentum &gt; 0 and dampening 0, as in torch.</param>
    public Sgd(double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
    {
        if (!(momentum >= 0) || !double.IsFinite(momentum)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be a finite number >= 0.");
        if (!double.IsFinite(dampening)) throw new ArgumentOutOfRangeException(nameof(dampening), dampening, "dampening must be finite.");
        if (!(weightDecay >= 0) || !double.IsFinite(weightDecay))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be a finite number >= 0.");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new UserErrorException($"Nesterov momentum requires momentum > 0 and dampening = 0 (got momentum {momentum}, dampening {dampening}).");
        Momentum = momentum; Dampening = dampening; WeightDecay = weightDecay; Nesterov = nesterov;
    }

    /// <inheritdoc />
    public override string Name => "sgd";

    /// <summary>Momentum factor.</summary>
    public double Momentum { get; }
    /// <summary>Dampening.</summary>
    public double Dampening { get; }
    /// <summary>L2 weight decay.</summary>
    public double WeightDecay { get; }
    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc />
    protected override void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step)
    {
        var level = Simd.Level;
        _slots.Reset(parameters.Count);
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (Momentum != 0)
            {
                var buf = Buffer(p, MomentumBuffer, p.Length, out bool created);
                _slots.Set(i, p, buf, flag: created);
            }
            else _slots.Set(i, p);
        }
        var work = new Work
        {
            Slots = _slots,
            Next = SgdKernel.Coefficients.For(learningRate, Momentum, Dampening, WeightDecay, Nesterov, firstStep: false),
            First = SgdKernel.Coefficients.For(learningRate, Momentum, Dampening, WeightDecay, Nesterov, firstStep: true),
        };
        ElementwiseDriver.Run(ref work, _slots.Lengths, _slots.Count, level);
    }

    /// <inheritdoc />
    protected override bool IsKnownBuffer(string buffer) => buffer == MomentumBuffer;

    private struct Work : IElementwiseKernel
    {
        public ElementwiseSlots Slots;
        public SgdKernel.Coefficients Next, First;

        public void Apply(int slot, int start, int count, SimdLevel level)
            => SgdKernel.Update(Slots.Grad(slot, start, count), Slots.Value(slot, start, count), Slots.S0(slot, start, count),
                Slots.Flags[slot] ? First : Next, level);
    }
}
