// SwiGLU gate of the Llama MLP (down_proj(silu(gate_proj(x)) * up_proj(x))), elementwise on [N, I]:
//   Forward   h = silu(gate) * up
//   Backward  dGate += dh * up * silu'(gate),   dUp += dh * silu(gate)
// Split over threads in 16-aligned chunks; results do not depend on the thread count.
// Not here: the two projections (MatMul) or a fused gate/up weight layout.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>SwiGLU: silu(gate) * up, forward and backward.</summary>
public static unsafe class SwiGlu
{
    /// <summary>h = silu(gate) * up.</summary>
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRange(float* g, float* u, float* h, int n, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(g + i);
                Vector512.Store(v / (Vector512<float>.One + Elementwise.Exp(-v)) * Vector512.Load(u + i), h + i);
            }
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(g + i);
                Vector256.Store(v / (Vector256<float>.One + Elementwise.Exp(-v)) * Vector256.Load(u + i), h + i);
            }
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(g + i);
                Vector128.Store(v / (Vector128<float>.One + Elementwise.Exp(-v)) * Vector128.Load(u + i), h + i);
            }
        for (; i < n; i++) h[i] = g[i] / (1f + Elementwise.Exp(-g[i])) * u[i];
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
                var s = Vector512<float>.One / (Vector512<float>.One + Elementwise.Exp(-v));
                var slope = s * (Vector512<float>.One + v * (Vector512<float>.One - s));
                Vector512.Store(Vector512.Load(dg + i) + d * Vector512.Load(u + i) * slope, dg + i);
                Vector512.Store(Vector512.Load(du + i) + d * (v * s), du + i);
            }
        if (level >= SimdLevel.V256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(g + i);
                var d = Vector256.Load(dh + i);
                var s = Vector256<float>.One / (Vector256<float>.One + Elementwise.Exp(-v));
                var slope = s * (Vector256<float>.One + v * (Vector256<float>.One - s));
                Vector256.Store(Vector256.Load(dg + i) + d * Vector256.Load(u + i) * slope, dg + i);
                Vector256.Store(Vector256.Load(du + i) + d * (v * s), du + i);
            }
        if (level >= SimdLevel.V128)
            for (; i + 4 <= n; i += 4)
            {
                var v = Vector128.Load(g + i);
                var d = Vector128.Load(dh + i);
                var s = Vector128<float>.One / (Vector128<float>.One + Elementwise.Exp(-v));
                var slope = s * (Vector128<float>.One + v * (Vector128<float>.One - s));
                Vector128.Store(Vector128.Load(dg + i) + d * Vector128.Load(u + i) * slope, dg + i);
                Vector128.Store(Vector128.Load(du + i) + d * (v * s), du + i);
            }
        for (; i < n; i++)
        {
            float v = g[i];
            float s = 1f / (1f + Elementwise.Exp(-v));
            dg[i] += dh[i] * u[i] * (s * (1f + v * (1f - s)));
            du[i] += dh[i] * (v * s);
        }
    }

    /// <summary>Plain scalar twins (generic so tests can run them in double).</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="SwiGlu.Forward"/>.</summary>
        public static void Forward<T>(ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> h) where T : unmanaged, IFloatingPointIeee754<T>
        {
            Elementwise.CheckSame(gate.Length, "gate", up.Length, "up");
            Elementwise.CheckSame(gate.Length, "gate", h.Length, "h");
            for (int i = 0; i < gate.Length; i++)
                h[i] = T.CreateTruncating(Silu.Reference.Value(double.CreateTruncating(gate[i])) * double.CreateTruncating(up[i]));
        }

        /// <summary>Scalar <see cref="SwiGlu.Backward"/>.</summary>
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
                dGate[i] = T.CreateTruncating(double.CreateTruncating(dGate[i]) + d * double.CreateTruncating(up[i]) * Silu.Reference.Slope(g));
                dUp[i] = T.CreateTruncating(double.CreateTruncating(dUp[i]) + d * Silu.Reference.Value(g));
            }
        }
    }
}
