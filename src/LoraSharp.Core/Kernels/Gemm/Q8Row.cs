// One row of activations quantized to Q8_0 blocks for the integer decode products (Q8Dot.cs), as ggml's
// quantize_row_q8_0 does it: per 32-element block d = max|x| / 127, q = round(x / d) (to nearest, ties to even;
// q in [-127, 127], never -128, so |q| fits a signed byte for maddubs), d kept as a float (ggml rounds it to
// f16; keeping it is free here and one rounding less).
// For Q4_0 the same codes are also laid out the way its kernels unpack a weight block's nibbles: per group of four
// blocks, the low halves [x_b[0..16) x_b+1[0..16) x_b+2.. x_b+3..] (the elements of the low nibbles), the high halves
// likewise, then per block four corrections c_b,j = 8·Σ q_i over i in {4j..4j+3} ∪ {16+4j..16+4j+3} (they let the
// kernels multiply the unsigned codes 0..15 and subtract 8·Σq instead of centring the codes), then each block's
// d times 2^112 four times (the grouped kernel turns the weight's f16 scale into f32·2^-112 with two integer
// operations; see Q8Dot). Written once per row, read by every weight row with no shuffles. The last group is padded
// (its missing blocks are never read). The grouped kernel is marked unusable for the row when some d·2^112
// overflows (|x| ≥ 2^16·127); the one- and two-block kernels read only the codes and corrections.
// Quantizing costs O(K) per row, against N·K in the products that read it (N ≥ 64 rows of W); it is vectorised all
// the same, because it runs on the caller's thread before the parallel products (Amdahl).
// Not here: the products (Q8Dot), which rows take this path (DecodedGemv).
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>A quantized activation row: K signed bytes, K/32 scales, and the Q4_0 layout (G).</summary>
internal readonly unsafe struct Q8Row
{
    /// <summary>Elements per block (ggml's QK8_0).</summary>
    public const int Block = 32;

    /// <summary>Codes q[K], natural order.</summary>
    public readonly sbyte* Q;

    /// <summary>Scales d[K / 32]: x ≈ d·q.</summary>
    public readonly float* D;

    /// <summary>
    /// The Q4_0 layout: a 64-byte header (int 0: 1 when every d·2^112 is finite), then per group g of four blocks
    /// 256 bytes: low-half codes [64], high-half codes [64], corrections [16 ints], d·2^112 [16 floats], lane 4i + j of
    /// each for block 4g + i; ⌈K/128⌉ groups.
    /// </summary>
    public readonly byte* G;

    public Q8Row(sbyte* q, float* d, byte* g)
    {
        Q = q;
        D = d;
        G = g;
    }

    /// <summary>Bytes of one group of four blocks in <see cref="G"/>.</summary>
    public const int GroupBytes = 256;

    /// <summary>True when every d·2^112 in <see cref="G"/> is finite (the grouped Q4_0 kernel may read the row).</summary>
    public bool Grouped => *(int*)G != 0;

    /// <summary>The group of blocks 4g..4g+3 in <see cref="G"/>.</summary>
    public byte* Group(int g) => G + 64 + (long)g * GroupBytes;

    /// <summary>Block b's 16 low-half codes (elements 0..15) in <see cref="G"/>; its high half is 64 bytes on.</summary>
    public sbyte* Lo(int b) => (sbyte*)Group(b >> 2) + 16 * (b & 3);

    /// <summary>Block b's four corrections c_b,0..3 in <see cref="G"/>.</summary>
    public int* Q4Offset(int b) => (int*)(Group(b >> 2) + 128) + 4 * (b & 3);

    // Float offset of G in a row's scratch: after q and d, on a 64-byte boundary.
    private static int GroupedAt(int K) => (K / 4 + K / Block + 15) & ~15;

    /// <summary>Floats of scratch one row of <paramref name="K"/> elements needs (K a multiple of 32; a multiple of 16, so rows stacked in one buffer stay 64-byte aligned).</summary>
    public static long Floats(int K) => GroupedAt(K) + 16 + (K + 4 * Block - 1) / (4 * Block) * (GroupBytes / 4);

    /// <summary>Lays a row of <paramref name="K"/> elements out in <paramref name="scratch"/> (<see cref="Floats"/> floats, 16-byte aligned; 64 keeps G's loads within cache lines).</summary>
    public static Q8Row At(float* scratch, int K) =>
        new((sbyte*)scratch, scratch + K / 4, (byte*)(scratch + GroupedAt(K)));

    /// <summary>
    /// Quantizes x[0..K) (K a multiple of 32) into <paramref name="row"/>; false, with the row unusable, when x holds
    /// a NaN or an infinity (the caller then takes the float products, which propagate it).
    /// </summary>
    public static bool Quantize(float* x, int K, Q8Row row) =>
        Avx2.IsSupported ? QuantizeV256(x, K, row) : QuantizeScalar(x, K, row);

    /// <summary>Scalar twin of <see cref="Quantize"/>: the same bytes in every field (and the definition above).</summary>
    public static bool QuantizeScalar(float* x, int K, Q8Row row)
    {
        bool fits = true;
        for (int b = 0; b < K / Block; b++)
        {
            float* xb = x + b * Block;
            float amax = 0;
            for (int i = 0; i < Block; i++) amax = MathF.Max(amax, MathF.Abs(xb[i]));
            if (!float.IsFinite(amax)) return false;   // MathF.Max propagates NaN
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            row.D[b] = d;
            sbyte* q = row.Q + b * Block;
            for (int i = 0; i < Block; i++)
                q[i] = (sbyte)Math.Clamp((int)MathF.Round(xb[i] * id, MidpointRounding.ToEven), -127, 127);
            sbyte* lo = row.Lo(b);
            int* off = row.Q4Offset(b);
            float* scaled = (float*)(off + 16);   // d·2^112 lanes sit 64 bytes after the corrections
            for (int k = 0; k < 16; k++)
            {
                lo[k] = q[k];
                lo[64 + k] = q[16 + k];
            }
            for (int j = 0; j < 4; j++)
            {
                off[j] = 8 * (q[4 * j] + q[4 * j + 1] + q[4 * j + 2] + q[4 * j + 3] + q[16 + 4 * j] + q[17 + 4 * j] + q[18 + 4 * j] + q[19 + 4 * j]);
                scaled[j] = d * Two112;   // exact while finite (a power of two)
            }
            fits &= float.IsFinite(d * Two112);
        }
        *(int*)row.G = fits ? 1 : 0;
        PadLastGroup(K, row);
        return true;
    }

    // One block (four vectors of 8) a step: |x| maximum on the bit patterns (for non-negative floats the integer order is
    // the float order, and infinity and NaN sort above every finite value, so one compare finds them), the same
    // multiply, round-to-even and clamp as the scalar twin, the corrections by two multiply-adds of the bytes with ones
    // (as the kernels do) and one add of the halves, the Q4_0 layout written as each block is done. Run once per row
    // for every product of the row; scalar, it was 4% of Q4_0 decode's samples, on the main thread while the worker
    // waited.
    private static bool QuantizeV256(float* x, int K, Q8Row row)
    {
        var magnitude = Vector256.Create(0x7FFFFFFF);
        var ones8 = Vector256.Create((byte)1);
        var ones16 = Vector256.Create((short)1);
        var qMax = Vector256.Create(127);
        var qMin = Vector256.Create(-127);
        bool fits = true;
        for (int b = 0; b < K / Block; b++)
        {
            float* xb = x + b * Block;
            var v0 = Vector256.Load(xb);
            var v1 = Vector256.Load(xb + 8);
            var v2 = Vector256.Load(xb + 16);
            var v3 = Vector256.Load(xb + 24);
            var m = Vector256.Max(Vector256.Max(v0.AsInt32() & magnitude, v1.AsInt32() & magnitude),
                                  Vector256.Max(v2.AsInt32() & magnitude, v3.AsInt32() & magnitude));
            var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
            m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
            int bits = Math.Max(m4.ToScalar(), m4.GetElement(1));
            if (bits >= 0x7F800000) return false;   // an infinity or a NaN
            float d = BitConverter.Int32BitsToSingle(bits) / 127f, id = d != 0 ? 1f / d : 0f;
            row.D[b] = d;
            var vid = Vector256.Create(id);
            var q0 = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(Vector256.Round(v0 * vid)), qMin), qMax);
            var q1 = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(Vector256.Round(v1 * vid)), qMin), qMax);
            var q2 = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(Vector256.Round(v2 * vid)), qMin), qMax);
            var q3 = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(Vector256.Round(v3 * vid)), qMin), qMax);
            var q = Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3));
            q.Store(row.Q + b * Block);
            var quads = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ones8, q), ones16);   // Σ of each 4 codes
            sbyte* lo = row.Lo(b);
            int* off = row.Q4Offset(b);
            q.GetLower().Store(lo);
            q.GetUpper().Store(lo + 64);
            ((quads.GetLower() + quads.GetUpper()) << 3).Store(off);
            float scaled = d * Two112;   // exact while finite (a power of two)
            fits &= float.IsFinite(scaled);
            Vector128.Create(scaled).Store((float*)(off + 16));
        }
        *(int*)row.G = fits ? 1 : 0;
        PadLastGroup(K, row);
        return true;
    }

    // Zero codes, corrections and d·2^112 for the missing blocks of a last partial group (Q8Dot.GroupReadBytes reads
    // them against whatever bytes follow a weight row).
    private static void PadLastGroup(int K, Q8Row row)
    {
        for (int b = K / Block; (b & 3) != 0; b++)
        {
            new Span<byte>(row.Lo(b), 16).Clear();
            new Span<byte>(row.Lo(b) + 64, 16).Clear();
            new Span<int>(row.Q4Offset(b), 4).Clear();
            new Span<float>((float*)(row.Q4Offset(b) + 16), 4).Clear();
        }
    }

    /// <summary>2^112: f16 bits shifted into an f32's place read as 2^-112 times the f16's value (Q8Dot).</summary>
    public static readonly float Two112 = BitConverter.Int32BitsToSingle((127 + 112) << 23);
}
