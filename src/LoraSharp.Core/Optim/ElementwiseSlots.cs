// Per-step scratch of an elementwise optimizer: for each parameter its length, value and gradient pointers and up
// to two state buffers, in arrays reused from step to step (no allocation once the parameter count is stable).
namespace LoraSharp.Core.Optim;

/// <summary>Reusable arrays describing the parameters of one step to an <see cref="IElementwiseKernel"/>.</summary>
internal sealed class ElementwiseSlots
{
    public int Count;
    public int[] Lengths = [];
    public nint[] Values = [];
    public nint[] Grads = [];
    public float[][] State0 = [];
    public float[][] State1 = [];
    public bool[] Flags = [];

    public void Reset(int count)
    {
        if (Lengths.Length < count)
        {
            Lengths = new int[count];
            Values = new nint[count];
            Grads = new nint[count];
            State0 = new float[count][];
            State1 = new float[count][];
            Flags = new bool[count];
        }
        Count = count;
    }

    public void Set(int i, Parameter p, float[]? state0 = null, float[]? state1 = null, bool flag = false)
    {
        Lengths[i] = p.Length;
        Values[i] = p.Value.Pointer;
        Grads[i] = p.Grad.Pointer;
        State0[i] = state0 ?? [];
        State1[i] = state1 ?? [];
        Flags[i] = flag;
    }

    public unsafe ReadOnlySpan<float> Grad(int i, int start, int count) => new((float*)Grads[i] + start, count);

    public unsafe Span<float> Value(int i, int start, int count) => new((float*)Values[i] + start, count);

    public Span<float> S0(int i, int start, int count) => State0[i].Length == 0 ? [] : State0[i].AsSpan(start, count);

    public Span<float> S1(int i, int start, int count) => State1[i].Length == 0 ? [] : State1[i].AsSpan(start, count);
}
