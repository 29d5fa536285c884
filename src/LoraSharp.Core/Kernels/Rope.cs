// Rotary position embedding in Hugging Face's rotate_half layout (legend: N rows = B*T tokens, H heads,
// HS head size, h = HS/2). Each head's vector is split in halves and pairs (j, j+h) are rotated by the angle
// of position p = positions[n] and frequency j:
//   Forward   x'[j]   = x[j] cos - x[j+h] sin        x'[j+h] = x[j+h] cos + x[j] sin
//   Backward  dx[j]   = dy[j] cos + dy[j+h] sin      dx[j+h] = dy[j+h] cos - dy[j] sin   (the inverse rotation)
// Both work in place on [N, H*HS]; the backward overwrites (it is the transpose, not an accumulation).
// Partial rotary (table.RotaryDim = rd < HS, phi3): h = rd/2 and only dims [0, rd) of each head rotate; the rest pass.
// Rows are split over threads; results do not depend on the thread count.
// Not here: the interleaved (GPT-J / Meta checkpoint) layout — weights are permuted to HF layout on load.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>Rotary position embedding, forward and backward, in place.</summary>
public static unsafe class Rope
{
    /// <summary>Rotates every head of every row of <paramref name="x"/> by its position, in place.</summary>
    /// <param name="x">Queries or keys [N, H*HS], rotated in place.</param>
    /// <param name="positions">Position of each row [N], in [0, table.MaxPositions).</param>
    /// <param name="table">cos/sin tables built for HS.</param>
    /// <param name="N">Rows (B*T).</param>
    /// <param name="H">Heads in x (NH for queries, NKV for keys).</param>
    /// <param name="HS">Head size.</param>
    public static void Forward(Span<float> x, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS)
        => Run(x, positions, table, N, H, HS, inverse: false);

    /// <summary>Applies the inverse rotation to the gradient in place (dx = Rᵀ dy).</summary>
    /// <param name="dx">On entry dOut [N, H*HS]; on return the gradient of the un-rotated input.</param>
    /// <param name="positions">Positions used in the forward pass [N].</param>
    /// <param name="table">The forward pass's table.</param>
    /// <param name="N">Rows.</param>
    /// <param name="H">Heads.</param>
    /// <param name="HS">Head size.</param>
    public static void Backward(Span<float> dx, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS)
        => Run(dx, positions, table, N, H, HS, inverse: true);

    private static void Run(Span<float> x, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS, bool inverse)
    {
        Check(x.Length, positions, table, N, H, HS);
        if (N == 0 || H == 0) return;
        fixed (float* px = x, pc = table.Cos, ps = table.Sin)
        fixed (int* pp = positions)
        {
            var work = new Work { X = px, Cos = pc, Sin = ps, Pos = pp, N = N, H = H, HS = HS, RD = table.RotaryDim, Inverse = inverse, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts((long)N * H * HS, N));
        }
    }

    private static void Check(int length, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (N < 0 || H < 0) throw new ArgumentException($"Dimensions must not be negative (N = {N}, H = {H}).");
        if (HS != table.HS)
            throw new ArgumentException($"Head size HS = {HS} but the RoPE table was built for HS = {table.HS}.", nameof(table));
        if (length != (long)N * H * HS)
            throw new ArgumentException($"x has {length} elements but its shape [{N}, {H}*{HS}] needs {(long)N * H * HS}.", "x");
        Elementwise.CheckLength(positions.Length, N, "positions");
        for (int n = 0; n < N; n++)
            if ((uint)positions[n] >= (uint)table.MaxPositions)
                throw new ArgumentException(
                    $"positions[{n}] = {positions[n]} is outside the RoPE table [0, {table.MaxPositions}); build the table for a longer sequence.",
                    nameof(positions));
    }

    private struct Work : IParallelWork
    {
        public float* X, Cos, Sin;
        public int* Pos;
        public int N, H, HS, RD;
        public bool Inverse;
        public SimdLevel Level;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (n0, n1) = Threads.Split(N, part, parts);
            int half = RD / 2;
            for (int n = n0; n < n1; n++)
            {
                float* c = Cos + (long)Pos[n] * half, s = Sin + (long)Pos[n] * half;
                float* row = X + (long)n * H * HS;
                for (int h = 0; h < H; h++)
                {
                    if (Inverse) RotateInverse(row + h * HS, c, s, half, Level);
                    else RotateForward(row + h * HS, c, s, half, Level);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RotateForward(float* x, float* c, float* s, int half, SimdLevel level)
    {
        float* y = x + half;
        int j = 0;
        if (level >= SimdLevel.V512)
            for (; j + 16 <= half; j += 16)
            {
                var a = Vector512.Load(x + j); var b = Vector512.Load(y + j);
                var cv = Vector512.Load(c + j); var sv = Vector512.Load(s + j);
                Vector512.Store(a * cv - b * sv, x + j);
                Vector512.Store(b * cv + a * sv, y + j);
            }
        if (level >= SimdLevel.V256)
            for (; j + 8 <= half; j += 8)
            {
                var a = Vector256.Load(x + j); var b = Vector256.Load(y + j);
                var cv = Vector256.Load(c + j); var sv = Vector256.Load(s + j);
                Vector256.Store(a * cv - b * sv, x + j);
                Vector256.Store(b * cv + a * sv, y + j);
            }
        if (level >= SimdLevel.V128)
            for (; j + 4 <= half; j += 4)
            {
                var a = Vector128.Load(x + j); var b = Vector128.Load(y + j);
                var cv = Vector128.Load(c + j); var sv = Vector128.Load(s + j);
                Vector128.Store(a * cv - b * sv, x + j);
                Vector128.Store(b * cv + a * sv, y + j);
            }
        for (; j < half; j++)
        {
            float a = x[j], b = y[j];
            x[j] = a * c[j] - b * s[j];
            y[j] = b * c[j] + a * s[j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RotateInverse(float* x, float* c, float* s, int half, SimdLevel level)
    {
        float* y = x + half;
        int j = 0;
        if (level >= SimdLevel.V512)
            for (; j + 16 <= half; j += 16)
            {
                var a = Vector512.Load(x + j); var b = Vector512.Load(y + j);
                var cv = Vector512.Load(c + j); var sv = Vector512.Load(s + j);
                Vector512.Store(a * cv + b * sv, x + j);
                Vector512.Store(b * cv - a * sv, y + j);
            }
        if (level >= SimdLevel.V256)
            for (; j + 8 <= half; j += 8)
            {
                var a = Vector256.Load(x + j); var b = Vector256.Load(y + j);
                var cv = Vector256.Load(c + j); var sv = Vector256.Load(s + j);
                Vector256.Store(a * cv + b * sv, x + j);
                Vector256.Store(b * cv - a * sv, y + j);
            }
        if (level >= SimdLevel.V128)
            for (; j + 4 <= half; j += 4)
            {
                var a = Vector128.Load(x + j); var b = Vector128.Load(y + j);
                var cv = Vector128.Load(c + j); var sv = Vector128.Load(s + j);
                Vector128.Store(a * cv + b * sv, x + j);
                Vector128.Store(b * cv - a * sv, y + j);
            }
        for (; j < half; j++)
        {
            float a = x[j], b = y[j];
            x[j] = a * c[j] + b * s[j];
            y[j] = b * c[j] - a * s[j];
        }
    }

    /// <summary>Plain scalar twins (generic so tests can run them in double).</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="Rope.Forward"/>.</summary>
        public static void Forward<T>(Span<T> x, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS)
            where T : unmanaged, IFloatingPointIeee754<T>
            => Apply(x, positions, table, N, H, HS, T.One);

        /// <summary>Scalar <see cref="Rope.Backward"/>.</summary>
        public static void Backward<T>(Span<T> dx, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS)
            where T : unmanaged, IFloatingPointIeee754<T>
            => Apply(dx, positions, table, N, H, HS, -T.One);

        private static void Apply<T>(Span<T> x, ReadOnlySpan<int> positions, RopeTable table, int N, int H, int HS, T sign)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            Check(x.Length, positions, table, N, H, HS);
            int half = table.RotaryDim / 2;
            for (int n = 0; n < N; n++)
                for (int h = 0; h < H; h++)
                    for (int j = 0; j < half; j++)
                    {
                        T c = T.CreateTruncating(table.Cos[positions[n] * half + j]);
                        T s = sign * T.CreateTruncating(table.Sin[positions[n] * half + j]);
                        int i = n * H * HS + h * HS + j;
                        T a = x[i], b = x[i + half];
                        x[i] = a * c - b * s;
                        x[i + half] = b * c + a * s;
                    }
        }
    }
}
