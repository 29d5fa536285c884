// Inverted dropout with a counter-based mask (as torch.nn.Dropout in training mode, with our own generator):
//   keep(i)   = CounterRng(seed).Next(offset + i) >= round(p * 2^32)        (probability 1 - p)
//   Forward   y[i]   = keep(i) ? x[i] / (1 - p) : 0        (scale computed as float 1/(1-p))
//   Backward  dx[i] += keep(i) ? dy[i] / (1 - p) : 0       (the mask is recomputed, never stored)
// The mask depends only on (seed, offset + i), so it is identical for any thread count and SIMD width.
// Callers give each dropout site and step a distinct (seed, offset) range. p = 1 drops everything.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>Seeded dropout, forward and backward.</summary>
public static unsafe class Dropout
{
    /// <summary>y = x * mask / (1 - p).</summary>
    /// <param name="x">Input, any shape.</param>
    /// <param name="y">Output, same length (may alias x).</param>
    /// <param name="p">Drop probability in [0, 1].</param>
    /// <param name="seed">Generator seed.</param>
    /// <param name="offset">Counter of element 0 (non-negative).</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, float p, ulong seed, long offset)
    {
        Elementwise.CheckSame(x.Length, "x", y.Length, "y");
        CheckArgs(p, offset);
        if (x.Length == 0) return;
        fixed (float* px = x, py = y)
        {
            var work = new Work { X = px, Y = py, Length = x.Length, P = p, Rng = new CounterRng(seed), Offset = (ulong)offset, Level = Simd.Level };
            Threads.Run(ref work, Elementwise.Parts(x.Length, int.MaxValue));
        }
    }

    /// <summary>dx += dy * mask / (1 - p), with the mask of the same (seed, offset).</summary>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient, same length, added into.</param>
    /// <param name="p">Drop probability used in the forward pass.</param>
    /// <param name="seed">Seed used in the forward pass.</param>
    /// <param name="offset">Offset used in the forward pass.</param>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, float p, ulong seed, long offset)
    {
        Elementwise.CheckSame(dy.Length, "dy", dx.Length, "dx");
        CheckArgs(p, offset);
        if (dy.Length == 0) return;
        fixed (float* pdy = dy, pdx = dx)
        {
            var work = new Work { X = pdy, Y = pdx, Length = dy.Length, P = p, Rng = new CounterRng(seed), Offset = (ulong)offset, Level = Simd.Level, Accumulate = true };
            Threads.Run(ref work, Elementwise.Parts(dy.Length, int.MaxValue));
        }
    }

    private static void CheckArgs(float p, long offset)
    {
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1] (lora_dropout / attention_dropout).");
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "Dropout counter offset must be non-negative.");
    }

    /// <summary>The keep threshold on the 32-bit value: keep when value &gt;= threshold. Returns false when nothing is kept (p = 1).</summary>
    internal static bool Threshold(float p, out uint threshold, out float scale)
    {
        double t = Math.Round(p * 4294967296.0);
        if (p >= 1f || t > uint.MaxValue) { threshold = uint.MaxValue; scale = 0f; return false; }
        threshold = (uint)t;
        scale = 1f / (1f - p);
        return true;
    }

    private struct Work : IParallelWork
    {
        public float* X, Y;
        public int Length;
        public float P;
        public CounterRng Rng;
        public ulong Offset;
        public SimdLevel Level;
        public bool Accumulate;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int part, int parts)
        {
            var (s, e) = Threads.SplitAligned(Length, 16, part, parts);
            if (!Threshold(P, out uint t, out float scale))
            {
                if (!Accumulate) new Span<float>(Y + s, e - s).Clear();
                return;
            }
            Range(X + s, Y + s, e - s, Offset + (ulong)s, Rng, t, scale, Accumulate, Level);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Range(float* x, float* y, int n, ulong counter, CounterRng rng, uint t, float scale, bool accumulate, SimdLevel level)
    {
        int i = 0;
        if (level >= SimdLevel.V512)
        {
            var iota = Vector512<uint>.Indices;
            var tv = Vector512.Create(t);
            var sv = Vector512.Create(scale);
            for (; i + 16 <= n; i += 16)
            {
                ulong c = counter + (ulong)i;
                if ((uint)c > uint.MaxValue - 15) break;   // the low word would wrap inside this vector: finish in scalar
                var keep = Vector512.GreaterThanOrEqual(rng.Next(Vector512.Create((uint)c) + iota, (uint)(c >> 32)), tv).AsSingle();
                var v = Vector512.ConditionalSelect(keep, Vector512.Load(x + i) * sv, Vector512<float>.Zero);
                if (accumulate) v += Vector512.Load(y + i);
                Vector512.Store(v, y + i);
            }
        }
        if (level >= SimdLevel.V256)
        {
            var iota = Vector256<uint>.Indices;
            var tv = Vector256.Create(t);
            var sv = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8)
            {
                ulong c = counter + (ulong)i;
                if ((uint)c > uint.MaxValue - 7) break;
                var keep = Vector256.GreaterThanOrEqual(rng.Next(Vector256.Create((uint)c) + iota, (uint)(c >> 32)), tv).AsSingle();
                var v = Vector256.ConditionalSelect(keep, Vector256.Load(x + i) * sv, Vector256<float>.Zero);
                if (accumulate) v += Vector256.Load(y + i);
                Vector256.Store(v, y + i);
            }
        }
        if (level >= SimdLevel.V128)
        {
            var iota = Vector128<uint>.Indices;
            var tv = Vector128.Create(t);
            var sv = Vector128.Create(scale);
            for (; i + 4 <= n; i += 4)
            {
                ulong c = counter + (ulong)i;
                if ((uint)c > uint.MaxValue - 3) break;
                var keep = Vector128.GreaterThanOrEqual(rng.Next(Vector128.Create((uint)c) + iota, (uint)(c >> 32)), tv).AsSingle();
                var v = Vector128.ConditionalSelect(keep, Vector128.Load(x + i) * sv, Vector128<float>.Zero);
                if (accumulate) v += Vector128.Load(y + i);
                Vector128.Store(v, y + i);
            }
        }
        for (; i < n; i++)
        {
            float v = rng.Next(counter + (ulong)i) >= t ? x[i] * scale : 0f;
            y[i] = accumulate ? y[i] + v : v;
        }
    }

    /// <summary>Plain scalar twins.</summary>
    public static class Reference
    {
        /// <summary>Scalar <see cref="Dropout.Forward"/>.</summary>
        public static void Forward(ReadOnlySpan<float> x, Span<float> y, float p, ulong seed, long offset)
        {
            Elementwise.CheckSame(x.Length, "x", y.Length, "y");
            CheckArgs(p, offset);
            var rng = new CounterRng(seed);
            bool any = Threshold(p, out uint t, out float scale);
            for (int i = 0; i < x.Length; i++)
                y[i] = any && rng.Next((ulong)offset + (ulong)i) >= t ? x[i] * scale : 0f;
        }

        /// <summary>Scalar <see cref="Dropout.Backward"/>.</summary>
        public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, float p, ulong seed, long offset)
        {
            Elementwise.CheckSame(dy.Length, "dy", dx.Length, "dx");
            CheckArgs(p, offset);
            var rng = new CounterRng(seed);
            bool any = Threshold(p, out uint t, out float scale);
            for (int i = 0; i < dy.Length; i++)
                dx[i] += any && rng.Next((ulong)offset + (ulong)i) >= t ? dy[i] * scale : 0f;
        }
    }
}
