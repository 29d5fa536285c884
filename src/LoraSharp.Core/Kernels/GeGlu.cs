// GeGLU gate of the Gemma MLP (down_proj(gelu_tanh(gate_proj(x)) * up_proj(x))), elementwise on [N, I], with
// PyTorch's tanh approximation of GELU (hidden_activation "gelu_pytorch_tanh"):
//   gelu(g)   = 0.5 g (1 + tanh(y)),  y = sqrt(2/pi) (g + 0.044715 g^3)
//   gelu'(g)  = 0.5 (1 + tanh(y)) + 0.5 g (1 - tanh(y)^2) sqrt(2/pi) (1 + 3 * 0.044715 g^2)
//   Forward   h = gelu(gate) * up
//   Backward  dGate += dh * up * gelu'(gate),   dUp += dh * gelu(gate)
// tanh(y) = 1 - 2 / (1 + exp(2y)) (exp saturates to 0 or +inf, which gives -1 and 1 exactly); its absolute error is
// a few float ulps of 1, which the 0.5 g factor keeps below the matmuls' rounding. Split over threads in 16-aligned
// chunks; results do not depend on the thread count. Not here: the erf form of GELU (hidden_act "gelu").
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>GeGLU: gelu_tanh(gate) * up, forward and backward.</summary>
public static unsafe class GeGlu
{
    private const float C0 = 0.7978845608028654f;   // sqrt(2/pi)
    private const float C1 = 0.044715f;

    /// <summary>h = gelu_tanh(gate) * up.</summary>
    /// <param name="gate">gate_proj output [N, I].</param>
    /// <param name="up">up_proj output [N, I].</param>
    /// <param name="h">Output [N, I] (may alias gate or up).</param>
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        Elementwise.CheckSame(gate.Length, "gate", up.Length, "up");
        Elementwise.CheckSame(gate.Length, "gate", h.Length, "h");
        if (gate.Length == 0) return;
        fixed (float* pg = gate, pu = up, ph = h)
        {
            var work = new Work { Gate = pg, Up = pu, H = ph, Length = gate.Length, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts(gate.Length, int.MaxValue));
        }
    }

    /// <summary>Adds the gradients of <see cref="Forward"/> into dGate and dUp.</summary>
    /// <param name="dh">Output gradient [N, I].</param>
    /// <param name="gate">Forward gate [N, I].</param>
    /// <param name="up">Forward up [N, I].</param>
    /// <param name="dGate">Gate gradient [N, I], added into.</param>
    /// <param name="dUp">Up gradient [N, I], added into.</param>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dGate, Span<float> dUp)
    {
        Elementwise.CheckSame(gate.Length, "gate", dh.Length, "dh");
        Elementwise.CheckSame(gate.Length, "gate", up.Length, "up");
        Elementwise.CheckSame(gate.Length, "gate", dGate.Length, "dGate");
        Elementwise.CheckSame(gate.Length, "gate", dUp.Length, "dUp");
        if (gate.Length == 0) return;
        fixed (float* pdh = dh, pg = gate, pu = up, pdg = dGate, pdu = dUp)
        {
            var work = new Work { Dh = pdh, Gate = pg, Up = pu, DGate = pdg, DUp = pdu, Length = gate.Length, Level = Simd.Level, Backward = true };
            Threads.Run(ref work, Elementwise.Parts(gate.Length, int.MaxValue));
        }
    }

    private struct Work : IParallelWork
    {
        public float* Gate, Up, H, Dh, DGate, DUp;
        public int Length;
        public SimdLevel Level;
        public bool Backward;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (s, e) = Threads.SplitAligned(Length, 16, part, parts);
            if (Backward) BackwardRange(Dh + s, Gate + s, Up + s, DGate + s, DUp + s, e - s, Level);
            else ForwardRange(Gate + s, Up + s, H + s, e - s, Level);
        }
    }

    // tanh(C0 (g + C1 g^3)) per lane.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Tanh(Vector512<float> g)
    {
        var y = Vector512.Create(C0) * (g + Vector512.Create(C1) * g * g * g);
        return Vector512<float>.One - Vector512.Create(2f) / (Vector512<float>.One + Elementwise.Exp(y + y));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Tanh(Vector256<float> g)
    {
        var y = Vector256.Create(C0) * (g + Vector256.Create(C1) * g * g * g);
        return Vector256<float>.One - Vector256.Create(2f) / (Vector256<float>.One + Elementwise.Exp(y + y));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Tanh(Vector128<float> g)
    {
        var y = Vector128.Create(C0) * (g + Vector128.Create(C1) * g * g * g);
        return Vector128<float>.One - Vector128.Create(2f) / (Vector128<float>.One + Elementwise.Exp(y + y));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tanh(float g)
    {
        float y = C0 * (g + C1 * g * g * g);
        return 1f - 2f / (1f + Elementwise.Exp(y + y));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRange(float* g, float* u, float* h, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(g + i);
                Vector512.Store(Vector512.Create(0.5f) * v * (Vector512<float>.One + Tanh(v)) * Vector512.Load(u + i), h + i);
            }
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(g + i);
                Vector256.Store(Vector256.Create(0.5f) * v * (Vector256<float>.One + Tanh(v)) * Vector256.Load(u + i), h + i);
            }
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(g + i);
                Vector128.Store(Vector128.Create(0.5f) * v * (Vector128<float>.One + Tanh(v)) * Vector128.Load(u + i), h + i);
            }
        for (; i < n; i++) h[i] = 0.5f * g[i] * (1f + Tanh(g[i])) * u[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRange(float* dh, float* g, float* u, float* dg, float* du, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(g + i);
                var d = Vector512.Load(dh + i);
                var t = Tanh(v);
                var half = Vector512.Create(0.5f);
                var slope = half * (Vector512<float>.One + t)
                            + half * v * (Vector512<float>.One - t * t) * Vector512.Create(C0) * (Vector512<float>.One + Vector512.Create(3f * C1) * v * v);
                Vector512.Store(Vector512.Load(dg + i) + d * Vector512.Load(u + i) * slope, dg + i);
                Vector512.Store(Vector512.Load(du + i) + d * (half * v * (Vector512<float>.One + t)), du + i);
            }
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(g + i);
                var d = Vector256.Load(dh + i);
                var t = Tanh(v);
                var half = Vector256.Create(0.5f);
                var slope = half * (Vector256<float>.One + t)
                            + half * v * (Vector256<float>.One - t * t) * Vector256.Create(C0) * (Vector256<float>.One + Vector256.Create(3f * C1) * v * v);
                Vector256.Store(Vector256.Load(dg + i) + d * Vector256.Load(u + i) * slope, dg + i);
                Vector256.Store(Vector256.Load(du + i) + d * (half * v * (Vector256<float>.One + t)), du + i);
            }
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(g + i);
                var d = Vector128.Load(dh + i);
                var t = Tanh(v);
                var half = Vector128.Create(0.5f);
                var slope = half * (Vector128<float>.One + t)
                            + half * v * (Vector128<float>.One - t * t) * Vector128.Create(C0) * (Vector128<float>.One + Vector128.Create(3f * C1) * v * v);
                Vector128.Store(Vector128.Load(dg + i) + d * Vector128.Load(u + i) * slope, dg + i);
                Vector128.Store(Vector128.Load(du + i) + d * (half * v * (Vector128<float>.One + t)), du + i);
            }
        for (; i < n; i++)
        {
            float v = g[i], t = Tanh(v);
            float slope = 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * C0 * (1f + 3f * C1 * v * v);
            dg[i] += dh[i] * u[i] * slope;
            du[i] += dh[i] * (0.5f * v * (1f + t));
        }
    }

    /// <summary>Plain scalar twins in double (generic so tests can run them in double).</summary>
    public static class Reference
    {
        /// <summary>gelu_tanh(g) in double.</summary>
        public static double Value(double g) => 0.5 * g * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));

        /// <summary>d gelu_tanh / dg in double.</summary>
        public static double Slope(double g)
        {
            double k = Math.Sqrt(2 / Math.PI), t = Math.Tanh(k * (g + 0.044715 * g * g * g));
            return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * k * (1 + 3 * 0.044715 * g * g);
        }

        /// <summary>Scalar <see cref="GeGlu.Forward"/>.</summary>
        public static void Forward<T>(ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> h) where T : unmanaged, IFloatingPointIeee754<T>
        {
            Elementwise.CheckSame(gate.Length, "gate", up.Length, "up");
            Elementwise.CheckSame(gate.Length, "gate", h.Length, "h");
            for (int i = 0; i < gate.Length; i++)
                h[i] = T.CreateTruncating(Value(double.CreateTruncating(gate[i])) * double.CreateTruncating(up[i]));
        }

        /// <summary>Scalar <see cref="GeGlu.Backward"/>.</summary>
        public static void Backward<T>(ReadOnlySpan<T> dh, ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> dGate, Span<T> dUp)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            Elementwise.CheckSame(gate.Length, "gate", dh.Length, "dh");
            Elementwise.CheckSame(gate.Length, "gate", up.Length, "up");
            Elementwise.CheckSame(gate.Length, "gate", dGate.Length, "dGate");
            Elementwise.CheckSame(gate.Length, "gate", dUp.Length, "dUp");
            for (int i = 0; i < gate.Length; i++)
            {
                double g = double.CreateTruncating(gate[i]), d = double.CreateTruncating(dh[i]);
                dGate[i] = T.CreateTruncating(double.CreateTruncating(dGate[i]) + d * double.CreateTruncating(up[i]) * Slope(g));
                dUp[i] = T.CreateTruncating(double.CreateTruncating(dUp[i]) + d * Value(g));
            }
        }
    }
}
