// LoRA's narrow products at many rows (training, prefill), with lora_dropout fused in (Models/Linear.cs):
//   Project          z[m, r]  = s · Σ_k u[m, k]·w[r, k]            u = x, or dropout(x) when p > 0 (keep bits written)
//   ProjectBackward  g[r, k] += Σ_m c[m, r]·u[m, k]                u from x and the keep bits Project wrote
//                    dx[m, k] += keep(m, k) ? (Σ_r c[m, r]·w[r, k])·inv : 0     (without dropout: dx += Σ_r …)
// An adapter's forward is Project(x, A) (z = s·A·u) then the blocked GEMM for z·Bᵀ; its backward is Project(dy, Bᵀ)
// for s·dy·B, ProjectBackward(z, dy) for dBᵀ, and ProjectBackward(s·dy·B, x) for dA and dx.
// Why not the blocked GEMM: at R = 8 every one of these is a pass over an [M, K] matrix with 8 FMAs an element, and
// the GEMM packed x (or dy) into 32-column panels of mostly padding, while dropout's mask (27 vector ops per 16
// elements) was computed three times (forward, the backward's recompute, dropout's backward) with two [M, K] buffers
// written and read in between. Here the mask is computed once (the forward), kept as bits (M·K/8 bytes), and every
// pass reads its [M, K] input once. Measured at shape (b) (M = 2048, K = 576, R = 8, p = 0.05): see docs/kernels.md.
// Exact definitions (the scalar twins; every SIMD width and thread count gives the same bits):
//   keep(m, k) = Dropout's mask: CounterRng(seed).Next(offset + m·K + k) >= round(p·2^32); u = keep ? x·inv : 0 with
//                inv = 1/(1-p) as float (p = 1 keeps nothing)
//   Project      16 lanes, lane j an fma chain over k ≡ j (mod 16) in k order from 0; lanes folded as
//                t_j = l_j + l_{j+8}, t_j + t_{j+4}, + t_{j+2}, + t_{j+1}; then times s
//   Backward     per block of 128 rows b, P_b[r, k] = one fma chain over the block's rows in order from 0; then
//                g = g + P_0 + P_1 + … in block order; du one fma chain over r from 0; then
//                dx = dx + (dropout ? (keep ? du·inv : 0) : du)
// Keep bits: row m, column k at bit k % 32 of word m·KeepWords(K) + k / 32; bits past K are 0.
// Split: both by rows (ProjectBackward by its 128-row blocks, whose partial sums of g are added in order after the
// run), static. A split by columns (each g element one chain over all rows) shared the cache lines at the split of
// every g and dx row between the two cores: 0.46 ms on 2 threads against 0.39 on one, at K = 576.
// Legend: M rows (tokens), K columns (in features; N, out features, for the B side), R rank.
// Not here: DoRA (Linear.Dora.cs, DoraRows), the z·Bᵀ product (GEMM), decode's few-row products of frozen weights.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Kernels.Gemm;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Kernels;

/// <summary>LoRA's rank-R products over rows, with dropout's mask computed once and kept as bits (with scalar twins).</summary>
public static unsafe class LoraRows
{
    /// <summary>Words of keep bits per row of K columns.</summary>
    public static int KeepWords(int K) => (K + 31) >> 5;

    /// <summary>Columns per cache block of <see cref="ProjectBackward"/> (its g and w rows stay in L1: 2·R·256 floats).</summary>
    private const int ColumnBlock = 256;

    [ThreadStatic] private static AlignedBuffer? t_u;   // the dropped rows of Project, per thread, grown, never freed

    /// <summary>
    /// z[m, r] = <paramref name="scale"/> · Σ_k u[m, k]·w[r, k], with u = x, or dropout(x) when <paramref name="p"/> &gt; 0,
    /// whose keep bits are written to <paramref name="keep"/>.
    /// </summary>
    /// <param name="x">[M, K] input rows.</param>
    /// <param name="w">[R, K] weight (LoRA's A; Bᵀ for the backward's dz).</param>
    /// <param name="z">[M, R] output, overwritten.</param>
    /// <param name="M">Rows.</param>
    /// <param name="K">Columns.</param>
    /// <param name="R">Rank.</param>
    /// <param name="scale">Factor on every sum (LoRA's alpha / r).</param>
    /// <param name="p">Dropout probability in [0, 1]; 0: none.</param>
    /// <param name="seed">Dropout's generator seed.</param>
    /// <param name="offset">Dropout's counter of element [0, 0] (non-negative).</param>
    /// <param name="keep">[M, KeepWords(K)] keep bits, written when <paramref name="p"/> &gt; 0 (may be empty otherwise).</param>
    public static void Project(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> z, int M, int K, int R, float scale,
        float p = 0, ulong seed = 0, long offset = 0, Span<uint> keep = default)
    {
        CheckProject(x.Length, w.Length, z.Length, M, K, R, p, offset, keep.Length);
        if (M == 0 || R == 0) return;
        var level = Simd.Level;
        if (level < SimdLevel.V256) { ProjectReference(x, w, z, M, K, R, scale, p, seed, offset, keep); return; }
        fixed (float* px = x, pw = w, pz = z)
        fixed (uint* pk = keep)
        {
            var work = new ProjectWork { X = px, W = pw, Z = pz, Keep = pk, M = M, K = K, R = R, Scale = scale, Drop = new Drop(p, seed, offset), Level = level };
            Threads.Run(ref work, Elementwise.Parts((long)M * K * Math.Max(1, R / 4), M));
        }
    }

    /// <summary>
    /// The backward of <see cref="Project"/> (without its scale): g[r, k] += Σ_m c[m, r]·u[m, k] when <paramref name="g"/> is
    /// not empty, and dx[m, k] += keep ? (Σ_r c[m, r]·w[r, k])·inv : 0 when <paramref name="dx"/> is not empty.
    /// </summary>
    /// <param name="c">[M, R] the output's gradient times the forward's scale (or z itself, for B's gradient).</param>
    /// <param name="x">[M, K] the forward's input rows.</param>
    /// <param name="keep">[M, KeepWords(K)] the forward's keep bits when <paramref name="p"/> &gt; 0.</param>
    /// <param name="p">The forward's dropout probability; 0: none.</param>
    /// <param name="w">[R, K] the forward's weight (read only for dx; may be empty without it).</param>
    /// <param name="g">[R, K] the weight's gradient, added into; empty: not computed.</param>
    /// <param name="dx">[M, K] the input's gradient, added into; empty: not computed.</param>
    /// <param name="M">Rows.</param>
    /// <param name="K">Columns.</param>
    /// <param name="R">Rank.</param>
    public static void ProjectBackward(ReadOnlySpan<float> c, ReadOnlySpan<float> x, ReadOnlySpan<uint> keep, float p,
        ReadOnlySpan<float> w, Span<float> g, Span<float> dx, int M, int K, int R)
    {
        CheckBackward(c.Length, x.Length, keep.Length, p, w.Length, g.Length, dx.Length, M, K, R);
        if (M == 0 || K == 0 || (g.IsEmpty && dx.IsEmpty)) return;
        var level = Simd.Level;
        if (level < SimdLevel.V256) { ProjectBackwardReference(c, x, keep, p, w, g, dx, M, K, R); return; }
        int blocks = Blocks(M);
        long stride = ((long)R * K + 15) & ~15L;   // each block's partial starts on a cache line
        float* partials = g.IsEmpty ? null : (t_partials ??= new AlignedBuffer()).Ensure(blocks * stride);
        fixed (float* pc = c, px = x, pw = w, pg = g, pdx = dx)
        fixed (uint* pk = keep)
        {
            var work = new BackwardWork
            {
                C = pc, X = px, Keep = p > 0 ? pk : null, W = pw, G = partials, Stride = stride, Dx = dx.IsEmpty ? null : pdx,
                M = M, K = K, R = R, Inv = new Drop(p, 0, 0).Inv, Level = level,
            };
            Threads.Run(ref work, Elementwise.Parts((long)M * K * Math.Max(1, R / 4), blocks));
            if (partials == null) return;
            // g + P_0 + P_1 + … in block order, as the definition.
            var gs = new Span<float>(pg, R * K);
            for (int b = 0; b < blocks; b++) System.Numerics.Tensors.TensorPrimitives.Add(gs, new ReadOnlySpan<float>(partials + b * stride, R * K), gs);
        }
    }

    /// <summary>Rows per block of <see cref="ProjectBackward"/>'s g: each block's sum is its own fma chain (from 0), and
    /// the blocks are added to g in order, so the split over threads (by blocks) never changes a bit.</summary>
    public const int BlockRows = 128;

    /// <summary>Row blocks of <see cref="BlockRows"/> in M rows.</summary>
    public static int Blocks(int M) => (M + BlockRows - 1) / BlockRows;

    [ThreadStatic] private static AlignedBuffer? t_partials;   // ProjectBackward's block sums of g, per calling thread

    /// <summary>The scalar twin of <see cref="Project"/> (the definition).</summary>
    public static void ProjectReference(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> z, int M, int K, int R, float scale,
        float p = 0, ulong seed = 0, long offset = 0, Span<uint> keep = default)
    {
        CheckProject(x.Length, w.Length, z.Length, M, K, R, p, offset, keep.Length);
        var drop = new Drop(p, seed, offset);
        var u = new float[K];
        Span<float> lanes = stackalloc float[16];
        int words = KeepWords(K);
        for (int m = 0; m < M; m++)
        {
            if (drop.On) keep.Slice(m * words, words).Clear();   // bits past K stay 0
            for (int k = 0; k < K; k++)
            {
                float v = x[m * K + k];
                if (drop.On)
                {
                    bool kept = drop.Keeps(drop.Offset + (ulong)m * (ulong)K + (ulong)k);
                    ref uint word = ref keep[m * words + (k >> 5)];
                    word = kept ? word | (1u << (k & 31)) : word & ~(1u << (k & 31));
                    v = kept ? v * drop.Inv : 0f;
                }
                u[k] = v;
            }
            for (int r = 0; r < R; r++)
            {
                lanes.Clear();
                for (int k = 0; k < K; k++) lanes[k & 15] = MathF.FusedMultiplyAdd(u[k], w[r * K + k], lanes[k & 15]);
                z[m * R + r] = Fold(lanes) * scale;
            }
        }
    }

    /// <summary>The scalar twin of <see cref="ProjectBackward"/> (the definition).</summary>
    public static void ProjectBackwardReference(ReadOnlySpan<float> c, ReadOnlySpan<float> x, ReadOnlySpan<uint> keep, float p,
        ReadOnlySpan<float> w, Span<float> g, Span<float> dx, int M, int K, int R)
    {
        CheckBackward(c.Length, x.Length, keep.Length, p, w.Length, g.Length, dx.Length, M, K, R);
        float inv = new Drop(p, 0, 0).Inv;
        int words = KeepWords(K);
        var block = new float[g.IsEmpty ? 0 : R * K];
        for (int m = 0; m < M; m++)
        {
            if (!g.IsEmpty && m % BlockRows == 0) Array.Clear(block);
            for (int k = 0; k < K; k++)
            {
                bool kept = p <= 0 || (keep[m * words + (k >> 5)] & (1u << (k & 31))) != 0;
                float u = p <= 0 ? x[m * K + k] : kept ? x[m * K + k] * inv : 0f;
                float du = 0f;
                for (int r = 0; r < R; r++)
                {
                    if (!g.IsEmpty) block[r * K + k] = MathF.FusedMultiplyAdd(c[m * R + r], u, block[r * K + k]);
                    if (!dx.IsEmpty) du = MathF.FusedMultiplyAdd(c[m * R + r], w[r * K + k], du);
                }
                if (!dx.IsEmpty) dx[m * K + k] += p <= 0 ? du : kept ? du * inv : 0f;
            }
            if (!g.IsEmpty && (m % BlockRows == BlockRows - 1 || m == M - 1))
                for (int i = 0; i < block.Length; i++) g[i] += block[i];
        }
    }

    // ---- shared pieces ----

    /// <summary>Dropout's parameters as the kernels use them.</summary>
    private readonly struct Drop
    {
        public readonly bool On;        // p > 0
        public readonly bool None;      // p >= 1: nothing kept
        public readonly uint Threshold; // keep when the value >= Threshold
        public readonly float Inv;      // 1 / (1 - p) as float
        public readonly CounterRng Rng;
        public readonly ulong Offset;

        public Drop(float p, ulong seed, long offset)
        {
            On = p > 0;
            Rng = new CounterRng(seed);
            Offset = (ulong)offset;
            None = On && !Dropout.Threshold(p, out Threshold, out Inv);
            if (!On) { Threshold = 0; Inv = 1f; }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Keeps(ulong counter) => !None && Rng.Next(counter) >= Threshold;
    }

    // The lane fold of the definition: t_j = l_j + l_{j+8}, then + t_{j+4}, + t_{j+2}, + t_{j+1}.
    private static float Fold(Span<float> l)
    {
        for (int half = 8; half >= 1; half >>= 1)
            for (int j = 0; j < half; j++) l[j] += l[j + half];
        return l[0];
    }

    // Sum of the 16 lanes at l (lane j = l[j]) after adding the K % 16 tail (k from K16) into them; then times scale.
    // The lanes come through memory: with the fold inlined into a kernel, the JIT kept the accumulators on the
    // stack inside the kernel's loop (a store per fma), as with Q8Dot's tails.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(float* l, float* u, float* w, int K16, int K, float scale)
    {
        for (int k = K16; k < K; k++) l[k - K16] = MathF.FusedMultiplyAdd(u[k], w[k], l[k - K16]);
        var v8 = Vector256.Load(l) + Vector256.Load(l + 8);
        var v4 = v8.GetLower() + v8.GetUpper();
        float a = v4.GetElement(0) + v4.GetElement(2), b = v4.GetElement(1) + v4.GetElement(3);
        return (a + b) * scale;
    }

    // ---- Project ----

    private struct ProjectWork : IParallelWork
    {
        public float* X, W, Z;
        public uint* Keep;
        public int M, K, R;
        public float Scale;
        public Drop Drop;
        public SimdLevel Level;

        public readonly void Execute(int part, int parts)
        {
            var (m0, m1) = Threads.Split(M, part, parts);
            float* u = Drop.On ? (t_u ??= new AlignedBuffer()).Ensure(2L * K + 16) : null;
            if (Level >= SimdLevel.V512) ProjectRows512(this, m0, m1, u);
            else ProjectRows256(this, m0, m1, u);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProjectRows512(in ProjectWork p, int m0, int m1, float* ubuf)
    {
        int K = p.K, R = p.R;
        for (int m = m0; m < m1; m += 2)
        {
            bool two = m + 1 < m1;
            float* u0 = p.X + (long)m * K, u1 = two ? u0 + K : u0;
            if (p.Drop.On)
            {
                DropRow(p, m, ubuf, SimdLevel.V512);
                u0 = ubuf;
                if (two) { DropRow(p, m + 1, ubuf + K, SimdLevel.V512); u1 = ubuf + K; }
                else u1 = u0;
            }
            float* z0 = p.Z + (long)m * R, z1 = z0 + R;
            int r = 0;
            for (; r + 4 <= R; r += 4) Dot2x4(u0, u1, p.W + (long)r * K, K, p.Scale, z0 + r, two ? z1 + r : null);
            for (; r < R; r++) Dot2x1(u0, u1, p.W + (long)r * K, K, p.Scale, z0 + r, two ? z1 + r : null);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProjectRows256(in ProjectWork p, int m0, int m1, float* ubuf)
    {
        int K = p.K, R = p.R;
        for (int m = m0; m < m1; m++)
        {
            float* u = p.X + (long)m * K;
            if (p.Drop.On) { DropRow(p, m, ubuf, SimdLevel.V256); u = ubuf; }
            float* zm = p.Z + (long)m * R;
            for (int r = 0; r < R; r++) zm[r] = Dot1x1With256(u, p.W + (long)r * K, K, p.Scale);
        }
    }

    // z0[0..3] (and z1[0..3] when z1 is not null) for four rows of w from w (row stride K); AVX-512.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot2x4(float* u0, float* u1, float* w, int K, float scale, float* z0, float* z1)
    {
        int K16 = K & ~15;
        float* w1 = w + K, w2 = w1 + K, w3 = w2 + K;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (int k = 0; k < K16; k += 16)
        {
            var x0 = Vector512.Load(u0 + k);
            var x1 = Vector512.Load(u1 + k);
            var v = Vector512.Load(w + k);
            a0 = Vector512.FusedMultiplyAdd(x0, v, a0);
            b0 = Vector512.FusedMultiplyAdd(x1, v, b0);
            v = Vector512.Load(w1 + k);
            a1 = Vector512.FusedMultiplyAdd(x0, v, a1);
            b1 = Vector512.FusedMultiplyAdd(x1, v, b1);
            v = Vector512.Load(w2 + k);
            a2 = Vector512.FusedMultiplyAdd(x0, v, a2);
            b2 = Vector512.FusedMultiplyAdd(x1, v, b2);
            v = Vector512.Load(w3 + k);
            a3 = Vector512.FusedMultiplyAdd(x0, v, a3);
            b3 = Vector512.FusedMultiplyAdd(x1, v, b3);
        }
        float* l = stackalloc float[8 * 16];
        a0.Store(l); a1.Store(l + 16); a2.Store(l + 32); a3.Store(l + 48);
        b0.Store(l + 64); b1.Store(l + 80); b2.Store(l + 96); b3.Store(l + 112);
        Finish2x4(l, u0, u1, w, K, scale, z0, z1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Finish2x4(float* l, float* u0, float* u1, float* w, int K, float scale, float* z0, float* z1)
    {
        int K16 = K & ~15;
        for (int r = 0; r < 4; r++) z0[r] = Finish(l + 16 * r, u0, w + (long)r * K, K16, K, scale);
        if (z1 != null)
            for (int r = 0; r < 4; r++) z1[r] = Finish(l + 64 + 16 * r, u1, w + (long)r * K, K16, K, scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot2x1(float* u0, float* u1, float* w, int K, float scale, float* z0, float* z1)
    {
        int K16 = K & ~15;
        Vector512<float> a = default, b = default;
        for (int k = 0; k < K16; k += 16)
        {
            var v = Vector512.Load(w + k);
            a = Vector512.FusedMultiplyAdd(Vector512.Load(u0 + k), v, a);
            b = Vector512.FusedMultiplyAdd(Vector512.Load(u1 + k), v, b);
        }
        float* l = stackalloc float[32];
        a.Store(l);
        b.Store(l + 16);
        z0[0] = Finish(l, u0, w, K16, K, scale);
        if (z1 != null) z1[0] = Finish(l + 16, u1, w, K16, K, scale);
    }

    // One sum with 16 lanes as two Vector256 halves (AVX2: 16 registers, so one row and one weight row at a time).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot1x1With256(float* u, float* w, int K, float scale)
    {
        int K16 = K & ~15;
        Vector256<float> lo = default, hi = default;
        for (int k = 0; k < K16; k += 16)
        {
            lo = Vector256.FusedMultiplyAdd(Vector256.Load(u + k), Vector256.Load(w + k), lo);
            hi = Vector256.FusedMultiplyAdd(Vector256.Load(u + k + 8), Vector256.Load(w + k + 8), hi);
        }
        float* l = stackalloc float[16];
        lo.Store(l);
        hi.Store(l + 8);
        return Finish(l, u, w, K16, K, scale);
    }

    // Row m of x dropped into u[0..K) and its keep bits written.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DropRow(in ProjectWork p, int m, float* u, SimdLevel level)
    {
        int K = p.K, words = KeepWords(K);
        float* x = p.X + (long)m * K;
        uint* bits = p.Keep + (long)m * words;
        ulong c0 = p.Drop.Offset + (ulong)m * (ulong)K;
        if (p.Drop.None)
        {
            new Span<float>(u, K).Clear();
            new Span<uint>(bits, words).Clear();
            return;
        }
        if ((K & 31) != 0) bits[words - 1] = 0;   // the tail's bits are or-ed in below; the rest are whole stores
        var rng = p.Drop.Rng;
        int k = 0;
        if (level >= SimdLevel.V512)
        {
            var iota = Vector512<uint>.Indices;
            var t = Vector512.Create(p.Drop.Threshold);
            var inv = Vector512.Create(p.Drop.Inv);
            for (; k + 16 <= K; k += 16)
            {
                ulong c = c0 + (ulong)k;
                if ((uint)c > uint.MaxValue - 15) { DropScalar(p.Drop, x, u, bits, c0, k, k + 16); continue; }   // low word wraps
                var keep = Vector512.GreaterThanOrEqual(rng.Next(Vector512.Create((uint)c) + iota, (uint)(c >> 32)), t);
                Vector512.Store(Vector512.ConditionalSelect(keep.AsSingle(), Vector512.Load(x + k) * inv, Vector512<float>.Zero), u + k);
                ((ushort*)bits)[k >> 4] = (ushort)keep.ExtractMostSignificantBits();
            }
        }
        else
        {
            var iota = Vector256<uint>.Indices;
            var t = Vector256.Create(p.Drop.Threshold);
            var inv = Vector256.Create(p.Drop.Inv);
            for (; k + 8 <= K; k += 8)
            {
                ulong c = c0 + (ulong)k;
                if ((uint)c > uint.MaxValue - 7) { DropScalar(p.Drop, x, u, bits, c0, k, k + 8); continue; }
                var keep = Vector256.GreaterThanOrEqual(rng.Next(Vector256.Create((uint)c) + iota, (uint)(c >> 32)), t);
                Vector256.Store(Vector256.ConditionalSelect(keep.AsSingle(), Vector256.Load(x + k) * inv, Vector256<float>.Zero), u + k);
                ((byte*)bits)[k >> 3] = (byte)keep.ExtractMostSignificantBits();
            }
        }
        DropScalar(p.Drop, x, u, bits, c0, k, K);
    }

    private static void DropScalar(in Drop d, float* x, float* u, uint* bits, ulong c0, int k0, int k1)
    {
        for (int k = k0; k < k1; k++)
        {
            bool kept = d.Keeps(c0 + (ulong)k);
            uint bit = 1u << (k & 31);
            bits[k >> 5] = kept ? bits[k >> 5] | bit : bits[k >> 5] & ~bit;
            u[k] = kept ? x[k] * d.Inv : 0f;
        }
    }

    // ---- ProjectBackward ----

    private struct BackwardWork : IParallelWork
    {
        public float* C, X, W, Dx;
        public float* G;      // the blocks' partial sums [blocks, Stride] (null: no g); in a block's work, its own
        public long Stride;
        public uint* Keep;    // null: no dropout
        public int M, K, R;
        public float Inv;
        public SimdLevel Level;

        public readonly void Execute(int part, int parts)
        {
            var (b0, b1) = Threads.Split(Blocks(M), part, parts);
            var q = this;
            for (int b = b0; b < b1; b++)
            {
                if (G != null)
                {
                    q.G = G + b * Stride;
                    new Span<float>(q.G, R * K).Clear();
                }
                int m0 = b * BlockRows, m1 = Math.Min(M, m0 + BlockRows);
                for (int k = 0; k < K; k += ColumnBlock) BackwardColumns(q, m0, m1, k, Math.Min(k + ColumnBlock, K));
            }
        }
    }

    // Rows [m0, m1) and columns [k0, k1) of a block's g and of dx: rows in fours (each g element's chain stays in
    // row order), the columns of a 256-column block while its g and w rows sit in L1.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardColumns(in BackwardWork p, int m0, int m1, int k0, int k1)
    {
        int M = m1, step = p.Level >= SimdLevel.V512 ? 16 : 8;
        int kv = k0 + (k1 - k0) / step * step;   // vector columns [k0, kv), scalar after
        int m = m0;
        for (; m + 4 <= M; m += 4)
        {
            if (p.Level >= SimdLevel.V512) for (int k = k0; k < kv; k += 16) Backward4<L512, Vector512<float>>(p, m, k);
            else for (int k = k0; k < kv; k += 8) Backward4<L256, Vector256<float>>(p, m, k);
            for (int mm = m; mm < m + 4; mm++) BackwardScalar(p, mm, kv, k1);
        }
        for (; m < M; m++)
        {
            if (p.Level >= SimdLevel.V512) for (int k = k0; k < kv; k += 16) Backward1<L512, Vector512<float>>(p, m, k);
            else for (int k = k0; k < kv; k += 8) Backward1<L256, Vector256<float>>(p, m, k);
            BackwardScalar(p, m, kv, k1);
        }
    }

    // One vector width for the backward kernels: static interface calls inline into plain vector instructions (as
    // Attention's tiles), so one body serves AVX-512 and AVX2.
    private interface ILanes<TV> where TV : unmanaged
    {
        static abstract int Count { get; }
        static abstract TV Load(float* p);
        static abstract void Store(float* p, TV v);
        static abstract TV Splat(float x);
        static abstract TV Fma(TV a, TV b, TV c);
        static abstract TV Add(TV a, TV b);
        static abstract TV Mul(TV a, TV b);
        /// <summary>All ones in the lanes whose keep bit is 0: the Count bits of row <paramref name="bits"/> at column k.</summary>
        static abstract TV Dropped(uint* bits, int k);
        /// <summary>dropped ? 0 : v.</summary>
        static abstract TV ZeroWhere(TV dropped, TV v);
    }

    private static readonly Vector512<uint> s_bit16 = Vector512.Create(1u, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
    private static readonly Vector256<uint> s_bit8 = Vector256.Create(1u, 2, 4, 8, 16, 32, 64, 128);

    private readonly struct L512 : ILanes<Vector512<float>>
    {
        public static int Count => 16;
        public static Vector512<float> Load(float* p) => Vector512.Load(p);
        public static void Store(float* p, Vector512<float> v) => Vector512.Store(v, p);
        public static Vector512<float> Splat(float x) => Vector512.Create(x);
        public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Dropped(uint* bits, int k)
            => Vector512.Equals(Vector512.Create((uint)((ushort*)bits)[k >> 4]) & s_bit16, Vector512<uint>.Zero).AsSingle();
        public static Vector512<float> ZeroWhere(Vector512<float> dropped, Vector512<float> v) => Vector512.ConditionalSelect(dropped, Vector512<float>.Zero, v);
    }

    private readonly struct L256 : ILanes<Vector256<float>>
    {
        public static int Count => 8;
        public static Vector256<float> Load(float* p) => Vector256.Load(p);
        public static void Store(float* p, Vector256<float> v) => Vector256.Store(v, p);
        public static Vector256<float> Splat(float x) => Vector256.Create(x);
        public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Dropped(uint* bits, int k)
            => Vector256.Equals(Vector256.Create((uint)((byte*)bits)[k >> 3]) & s_bit8, Vector256<uint>.Zero).AsSingle();
        public static Vector256<float> ZeroWhere(Vector256<float> dropped, Vector256<float> v) => Vector256.ConditionalSelect(dropped, Vector256<float>.Zero, v);
    }

    // u for Count columns at k of row m: x, or keep ? x·inv : 0 from the bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV U<TL, TV>(in BackwardWork p, int m, int k, out TV dropped) where TL : struct, ILanes<TV> where TV : unmanaged
    {
        var x = TL.Load(p.X + (long)m * p.K + k);
        if (p.Keep == null) { dropped = default; return x; }
        dropped = TL.Dropped(p.Keep + (long)m * KeepWords(p.K), k);
        return TL.ZeroWhere(dropped, TL.Mul(x, TL.Splat(p.Inv)));
    }

    // dx row m at k += (dropout ? (kept ? du·inv : 0) : du).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddDx<TL, TV>(in BackwardWork p, int m, int k, TV du, TV dropped) where TL : struct, ILanes<TV> where TV : unmanaged
    {
        float* dx = p.Dx + (long)m * p.K + k;
        var v = p.Keep == null ? du : TL.ZeroWhere(dropped, TL.Mul(du, TL.Splat(p.Inv)));
        TL.Store(dx, TL.Add(TL.Load(dx), v));
    }

    // Rows m..m+3, Count columns at k: g rows += Σ_i c[m+i, r]·u_i (rows in order), dx rows += the masked Σ_r c·w.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Backward4<TL, TV>(in BackwardWork p, int m, int k) where TL : struct, ILanes<TV> where TV : unmanaged
    {
        int K = p.K, R = p.R;
        var u0 = U<TL, TV>(p, m, k, out var d0);
        var u1 = U<TL, TV>(p, m + 1, k, out var d1);
        var u2 = U<TL, TV>(p, m + 2, k, out var d2);
        var u3 = U<TL, TV>(p, m + 3, k, out var d3);
        float* c = p.C + (long)m * R;
        if (p.G != null)
        {
            float* g = p.G + k;
            for (int r = 0; r < R; r++, g += K)
            {
                var acc = TL.Load(g);
                acc = TL.Fma(TL.Splat(c[r]), u0, acc);
                acc = TL.Fma(TL.Splat(c[R + r]), u1, acc);
                acc = TL.Fma(TL.Splat(c[2 * R + r]), u2, acc);
                acc = TL.Fma(TL.Splat(c[3 * R + r]), u3, acc);
                TL.Store(g, acc);
            }
        }
        if (p.Dx == null) return;
        TV e0 = default, e1 = default, e2 = default, e3 = default;
        float* w = p.W + k;
        for (int r = 0; r < R; r++, w += K)
        {
            var v = TL.Load(w);
            e0 = TL.Fma(TL.Splat(c[r]), v, e0);
            e1 = TL.Fma(TL.Splat(c[R + r]), v, e1);
            e2 = TL.Fma(TL.Splat(c[2 * R + r]), v, e2);
            e3 = TL.Fma(TL.Splat(c[3 * R + r]), v, e3);
        }
        AddDx<TL, TV>(p, m, k, e0, d0);
        AddDx<TL, TV>(p, m + 1, k, e1, d1);
        AddDx<TL, TV>(p, m + 2, k, e2, d2);
        AddDx<TL, TV>(p, m + 3, k, e3, d3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Backward1<TL, TV>(in BackwardWork p, int m, int k) where TL : struct, ILanes<TV> where TV : unmanaged
    {
        int K = p.K, R = p.R;
        var u = U<TL, TV>(p, m, k, out var d);
        float* c = p.C + (long)m * R;
        if (p.G != null)
        {
            float* g = p.G + k;
            for (int r = 0; r < R; r++, g += K) TL.Store(g, TL.Fma(TL.Splat(c[r]), u, TL.Load(g)));
        }
        if (p.Dx == null) return;
        TV e = default;
        float* w = p.W + k;
        for (int r = 0; r < R; r++, w += K) e = TL.Fma(TL.Splat(c[r]), TL.Load(w), e);
        AddDx<TL, TV>(p, m, k, e, d);
    }

    // Columns [k0, k1) of row m one at a time (the K tail), as the definition.
    private static void BackwardScalar(in BackwardWork p, int m, int k0, int k1)
    {
        int K = p.K, R = p.R, words = KeepWords(K);
        float* c = p.C + (long)m * R;
        for (int k = k0; k < k1; k++)
        {
            bool kept = p.Keep == null || (p.Keep[(long)m * words + (k >> 5)] & (1u << (k & 31))) != 0;
            float x = p.X[(long)m * K + k];
            float u = p.Keep == null ? x : kept ? x * p.Inv : 0f;
            float du = 0f;
            for (int r = 0; r < R; r++)
            {
                if (p.G != null) p.G[(long)r * K + k] = MathF.FusedMultiplyAdd(c[r], u, p.G[(long)r * K + k]);
                if (p.Dx != null) du = MathF.FusedMultiplyAdd(c[r], p.W[(long)r * K + k], du);
            }
            if (p.Dx != null) p.Dx[(long)m * K + k] += p.Keep == null ? du : kept ? du * p.Inv : 0f;
        }
    }

    // ---- checks ----

    private static void CheckProject(int x, int w, int z, int M, int K, int R, float p, long offset, int keep)
    {
        if (M < 0 || K < 0 || R < 0) throw new ArgumentException($"LoraRows.Project: dimensions must not be negative (M = {M}, K = {K}, R = {R}).");
        Elementwise.CheckLength(x, M, K, "x");
        Elementwise.CheckLength(w, R, K, "w");
        Elementwise.CheckLength(z, M, R, "z");
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1] (lora_dropout).");
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, "Dropout counter offset must be non-negative.");
        if (p > 0 && keep < (long)M * KeepWords(K))
            throw new ArgumentException($"keep has {keep} words; [M, KeepWords(K)] = [{M}, {KeepWords(K)}] needs {(long)M * KeepWords(K)}.", nameof(keep));
    }

    private static void CheckBackward(int c, int x, int keep, float p, int w, int g, int dx, int M, int K, int R)
    {
        if (M < 0 || K < 0 || R < 0) throw new ArgumentException($"LoraRows.ProjectBackward: dimensions must not be negative (M = {M}, K = {K}, R = {R}).");
        Elementwise.CheckLength(c, M, R, "c");
        Elementwise.CheckLength(x, M, K, "x");
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1] (lora_dropout).");
        if (p > 0 && keep < (long)M * KeepWords(K))
            throw new ArgumentException($"keep has {keep} words; [M, KeepWords(K)] = [{M}, {KeepWords(K)}] needs {(long)M * KeepWords(K)}.", nameof(keep));
        if (g != 0) Elementwise.CheckLength(g, R, K, "g");
        if (dx != 0)
        {
            Elementwise.CheckLength(dx, M, K, "dx");
            Elementwise.CheckLength(w, R, K, "w");
        }
    }
}
