// Random but valid stored rows for every dtype Dequant reads: random code bytes, with the scale fields (f16 d/dmin,
// f32 NF4 absmax) set to finite values of a chosen size, so decoded weights are bounded by about `amplitude`.
using System.Buffers.Binary;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.TestSupport;

/// <summary>Seeded random blocks of the stored dtypes.</summary>
public static class QuantTestData
{
    /// <summary>Every dtype a frozen weight can be stored in.</summary>
    public static readonly DType[] StoredTypes =
        [DType.F16, DType.BF16, DType.NF4, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q4_K, DType.Q5_K, DType.Q6_K];

    /// <summary>
    /// <paramref name="blocks"/> random blocks of <paramref name="type"/> whose values are at most about
    /// <paramref name="amplitude"/> in magnitude (amplitude 0: the scale fields are uniform in [-2, 2] instead).
    /// </summary>
    public static byte[] RandomBlocks(DType type, int blocks, int seed, double amplitude = 0)
    {
        var rng = new Random(seed);
        int bb = DTypeInfo.BlockBytes(type);
        var b = new byte[blocks * bb];
        rng.NextBytes(b);
        double Scale(double range) => amplitude == 0 ? rng.NextDouble() * 4 - 2 : (0.5 + 0.5 * rng.NextDouble()) * amplitude / range;
        void Half(int at, double v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), BitConverter.HalfToUInt16Bits((Half)v));
        for (int k = 0; k < blocks; k++)
        {
            int o = k * bb;
            switch (type)
            {
                case DType.Q8_0: Half(o, Scale(127)); break;
                case DType.Q4_0: Half(o, Scale(8)); break;
                case DType.Q5_0: Half(o, Scale(16)); break;
                case DType.Q4_1: Half(o, Scale(15)); Half(o + 2, -Scale(2)); break;
                case DType.Q5_1: Half(o, Scale(31)); Half(o + 2, -Scale(2)); break;
                case DType.Q4_K: Half(o, Scale(63 * 15)); Half(o + 2, Scale(63)); break;
                case DType.Q5_K: Half(o, Scale(63 * 31)); Half(o + 2, Scale(63)); break;
                case DType.Q6_K: Half(o + 208, Scale(127 * 32)); break;
                case DType.NF4: BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(o), (float)Math.Abs(Scale(1))); break;
            }
        }
        if (type is DType.F32)
            for (int i = 0; i < b.Length; i += 4) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i), (float)((rng.NextDouble() * 2 - 1) * Amp(amplitude)));
        if (type is DType.F16)
            for (int i = 0; i < b.Length; i += 2) Half(i, (rng.NextDouble() * 2 - 1) * Amp(amplitude));
        if (type is DType.BF16)
            for (int i = 0; i < b.Length; i += 2)
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(i), (ushort)(BitConverter.SingleToUInt32Bits((float)((rng.NextDouble() * 2 - 1) * Amp(amplitude))) >> 16));
        return b;
    }

    /// <summary>A [rows, cols] tensor of random <paramref name="type"/> rows (cols a whole number of blocks).</summary>
    public static Tensor RandomTensor(DType type, int rows, int cols, int seed, double amplitude)
    {
        var t = Tensor.Zeros(type, rows, cols);
        RandomBlocks(type, checked((int)(DTypeInfo.ByteCount(type, (long)rows * cols) / DTypeInfo.BlockBytes(type))), seed, amplitude).CopyTo(t.Bytes);
        return t;
    }

    /// <summary>Every element of <paramref name="t"/> (any stored dtype, rows of its last dimension) by the scalar decoders.</summary>
    public static float[] Dequantize(Tensor t)
    {
        int k = t.Shape.Length == 0 ? 1 : t.Shape[^1], rows = (int)(t.ElementCount / k), rowBytes = (int)DTypeInfo.ByteCount(t.DType, k);
        var f = new float[t.ElementCount];
        for (int r = 0; r < rows; r++) Dequant.DequantizeRowScalar(t.DType, t.Bytes.Slice(r * rowBytes, rowBytes), f.AsSpan(r * k, k));
        return f;
    }

    private static double Amp(double amplitude) => amplitude == 0 ? 1 : amplitude;
}
