// What Adam and AdamW share: argument checks, buffer names and the threaded elementwise step.
namespace LoraSharp.Core.Optim;

internal static class AdamChecks
{
    public const string ExpAvg = "exp_avg";
    public const string ExpAvgSq = "exp_avg_sq";

    public static void Validate(double beta1, double beta2, double eps, double weightDecay)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1).");
        if (!(eps >= 0) || !double.IsFinite(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be a finite number >= 0.");
        if (!(weightDecay >= 0) || !double.IsFinite(weightDecay))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be a finite number >= 0.");
    }

    public static void Run(Optimizer owner, ElementwiseSlots slots, IReadOnlyList<Parameter> parameters, in AdamKernel.Coefficients c)
    {
        var level = Simd.Level;
        slots.Reset(parameters.Count);
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            slots.Set(i, p, owner.Buffer(p, ExpAvg, p.Length), owner.Buffer(p, ExpAvgSq, p.Length));
        }
        var kernel = new Work { Slots = slots, C = c };
        ElementwiseDriver.Run(ref kernel, slots.Lengths, slots.Count, level);
    }

    private struct Work : IElementwiseKernel
    {
        public ElementwiseSlots Slots;
        public AdamKernel.Coefficients C;

        public void Apply(int slot, int start, int count, SimdLevel level)
            => AdamKernel.Update(Slots.Grad(slot, start, count), Slots.Value(slot, start, count),
                Slots.S0(slot, start, count), Slots.S1(slot, start, count), C, level);
    }
}
