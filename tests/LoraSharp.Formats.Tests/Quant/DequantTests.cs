// Block dequantizers: the vectorized path equals the scalar reference bit for bit at every SIMD level and row
// length; hand-built blocks decode to independently computed values; Q8_0/Q4_0 quantization reproduces the blocks
// of the shared stories260K GGUF files (made by llama-quantize, equal to gguf-py's reference) bit for bit.
using System.Buffers.Binary;
using LoraSharp.Core;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.TestSupport;

namespace LoraSharp.Formats.Tests.Quant;

public class DequantTests
{
    public static TheoryData<DType> AllTypes => new() { DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q4_K, DType.Q5_K, DType.Q6_K, DType.NF4 };

    private static byte[] RandomBlocks(DType t, int blocks, int seed) => QuantTestData.RandomBlocks(t, blocks, seed);

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void DequantizeRow_FastEqualsScalarBitForBit_EverySimdLevelAndLength(DType type)
    {
        int bs = DTypeInfo.BlockSize(type);
        int[] blockCounts = bs == 1 ? [0, 1, 3, 17, 33, 64, 257] : [0, 1, 2, 3, 5, 17];
        foreach (int nb in blockCounts)
        {
            byte[] src = RandomBlocks(type, nb, seed: 100 + nb);
            int n = nb * bs;
            var expected = new float[n + 2];
            Dequant.DequantizeRowScalar(type, src, expected.AsSpan(1, n));
            foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128, SimdLevel.Scalar })
            {
                using var _ = Simd.Force(level);
                var actual = new float[n + 2];
                actual[0] = actual[^1] = 12345f; // guard values
                Dequant.DequantizeRow(type, src, actual.AsSpan(1, n));
                Assert.Equal(12345f, actual[0]);
                Assert.Equal(12345f, actual[^1]);
                for (int i = 0; i < n; i++)
                    Assert.True(BitConverter.SingleToUInt32Bits(expected[1 + i]) == BitConverter.SingleToUInt32Bits(actual[1 + i]),
                        $"{type} level {level} blocks {nb} element {i}: {actual[1 + i]} != {expected[1 + i]}");
            }
        }
    }

    [Theory]
    [InlineData("stories260K-Q8_0.gguf")]
    [InlineData("stories260K-Q4_0.gguf")]
    public void DequantizeRow_StoriesQuantizedTensors_FastEqualsScalarBitForBit(string file)
    {
        using var g = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", file));
        foreach (var info in g.Tensors.Where(t => DTypeInfo.IsQuantized(t.DType)))
        {
            var bytes = g.GetTensor(info.Name).Bytes;
            var expected = new float[info.ElementCount];
            Dequant.DequantizeRowScalar(info.DType, bytes, expected);
            foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128 })
            {
                using var _ = Simd.Force(level);
                var actual = new float[info.ElementCount];
                Dequant.DequantizeRow(info.DType, bytes, actual);
                Assert.True(System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(expected.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(actual.AsSpan())), $"{file} {info.Name} at {level}");
            }
        }
    }

    [Fact]
    public void DequantizeRow_WrongByteCount_ThrowsNamingType()
    {
        var e = Assert.Throws<ArgumentException>(() => Dequant.DequantizeRow(DType.Q4_K, new byte[143], new float[256]));
        Assert.Contains("Q4_K", e.Message);
        Assert.Throws<ArgumentException>(() => Dequant.DequantizeRow(DType.Q8_0, new byte[34], new float[31]));
    }

    private static void AssertBoth(DType t, byte[] block, float[] expected)
    {
        var s = new float[expected.Length];
        Dequant.DequantizeRowScalar(t, block, s);
        Assert.Equal(expected, s);
        foreach (var level in new[] { SimdLevel.V512, SimdLevel.V256, SimdLevel.V128 })
        {
            using var _ = Simd.Force(level);
            var f = new float[expected.Length];
            Dequant.DequantizeRow(t, block, f);
            Assert.Equal(expected, f);
        }
    }

    private static void Half(byte[] b, int at, float v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), BitConverter.HalfToUInt16Bits((Half)v));

    [Fact]
    public void Q4_K_HandBuiltBlock_DecodesToKnownValues()
    {
        // d = 0.5, dmin = 0.25; sub-block j has scale j+1 and min 2j (6-bit packing of get_scale_min_k4, with the
        // high bits of sub-blocks 4..7 stored in the top bits of bytes 0..7); weight l of sub-block j has q = (l + j) % 16.
        var b = new byte[144];
        Half(b, 0, 0.5f);
        Half(b, 2, 0.25f);
        int[] sc = [1, 2, 3, 4, 5, 6, 7, 63], mn = [0, 2, 4, 6, 8, 10, 12, 62];
        for (int j = 0; j < 4; j++) { b[4 + j] = (byte)(sc[j] | (sc[j + 4] >> 4) << 6); b[8 + j] = (byte)(mn[j] | (mn[j + 4] >> 4) << 6); }
        for (int j = 4; j < 8; j++) b[8 + j] = (byte)((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
        var expected = new float[256];
        for (int j = 0; j < 8; j++)
            for (int l = 0; l < 32; l++)
            {
                int q = (l + j) % 16;
                int g = j / 2, hi = j % 2;
                b[16 + 32 * g + l] |= (byte)(hi == 0 ? q : q << 4);
                expected[32 * j + l] = 0.5f * sc[j] * q - 0.25f * mn[j];
            }
        AssertBoth(DType.Q4_K, b, expected);
    }

    [Fact]
    public void Q5_K_HandBuiltBlock_DecodesToKnownValues()
    {
        var b = new byte[176];
        Half(b, 0, 0.125f);
        Half(b, 2, 1f);
        int[] sc = [9, 8, 7, 6, 5, 4, 3, 2], mn = [1, 1, 2, 3, 5, 8, 13, 21];
        for (int j = 0; j < 4; j++) { b[4 + j] = (byte)(sc[j] | (sc[j + 4] >> 4) << 6); b[8 + j] = (byte)(mn[j] | (mn[j + 4] >> 4) << 6); }
        for (int j = 4; j < 8; j++) b[8 + j] = (byte)((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
        var expected = new float[256];
        for (int j = 0; j < 8; j++)
            for (int l = 0; l < 32; l++)
            {
                int q = (3 * l + j) % 32; // 5-bit value: low nibble in qs, fifth bit j of qh[l]
                int g = j / 2, hi = j % 2;
                b[48 + 32 * g + l] |= (byte)(hi == 0 ? q & 0xF : (q & 0xF) << 4);
                if (q >= 16) b[16 + l] |= (byte)(1 << j);
                expected[32 * j + l] = 0.125f * sc[j] * q - 1f * mn[j];
            }
        AssertBoth(DType.Q5_K, b, expected);
    }

    [Fact]
    public void Q6_K_HandBuiltBlock_DecodesToKnownValues()
    {
        var b = new byte[210];
        Half(b, 208, 0.0625f);
        var scales = new sbyte[16];
        for (int k = 0; k < 16; k++) { scales[k] = (sbyte)(k % 2 == 0 ? k + 1 : -k); b[192 + k] = (byte)scales[k]; }
        var expected = new float[256];
        for (int e = 0; e < 256; e++)
        {
            int q = (e * 7) % 64; // stored 6-bit value; weight = d * scale * (q - 32)
            int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
            int qlIndex = 64 * half + l + (quarter % 2 == 1 ? 32 : 0);
            b[qlIndex] |= (byte)(quarter < 2 ? q & 0xF : (q & 0xF) << 4);
            b[128 + 32 * half + l] |= (byte)((q >> 4) << (2 * quarter));
            expected[e] = 0.0625f * scales[e / 16] * (q - 32);
        }
        AssertBoth(DType.Q6_K, b, expected);
    }

    [Fact]
    public void Q4_1_Q5_0_Q5_1_HandBuiltBlocks_DecodeToKnownValues()
    {
        var q41 = new byte[20];
        Half(q41, 0, 0.5f);
        Half(q41, 2, -1f);
        var e41 = new float[32];
        for (int j = 0; j < 32; j++) { int q = (5 * j) % 16; q41[4 + j % 16] |= (byte)(j < 16 ? q : q << 4); e41[j] = q * 0.5f - 1f; }
        AssertBoth(DType.Q4_1, q41, e41);

        var q50 = new byte[22];
        Half(q50, 0, 0.25f);
        var e50 = new float[32];
        uint qh = 0;
        for (int j = 0; j < 32; j++)
        {
            int q = (7 * j + 3) % 32;
            q50[6 + j % 16] |= (byte)(j < 16 ? q & 0xF : (q & 0xF) << 4);
            if (q >= 16) qh |= 1u << j;
            e50[j] = (q - 16) * 0.25f;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(q50.AsSpan(2), qh);
        AssertBoth(DType.Q5_0, q50, e50);

        var q51 = new byte[24];
        Half(q51, 0, 2f);
        Half(q51, 2, 0.5f);
        Array.Copy(q50, 2, q51, 4, 20);
        var e51 = new float[32];
        for (int j = 0; j < 32; j++) e51[j] = ((7 * j + 3) % 32) * 2f + 0.5f;
        AssertBoth(DType.Q5_1, q51, e51);
    }

    [Theory]
    [InlineData("stories260K-Q8_0.gguf")]
    [InlineData("stories260K-Q4_0.gguf")]
    public void Quantize_StoriesF32_ReproducesLlamaQuantizeBlocksBitForBit(string file)
    {
        using var f32 = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf"));
        using var q = GgufFile.Open(SharedFixtures.Path("models", "stories260K-gguf", file));
        int checkedTensors = 0;
        foreach (var info in q.Tensors)
        {
            if (!DTypeInfo.IsQuantized(info.DType)) continue;
            var src = f32.GetTensor(info.Name).Floats;
            var mine = new byte[info.ByteLength];
            int row = (int)info.Dims[0];
            int rowBytes = (int)DTypeInfo.ByteCount(info.DType, row);
            for (int r = 0; r < src.Length / row; r++)
                Dequant.QuantizeRow(info.DType, src.Slice(r * row, row), mine.AsSpan(r * rowBytes, rowBytes));
            var theirs = q.GetTensor(info.Name).Bytes;
            int firstDiff = mine.AsSpan().CommonPrefixLength(theirs);
            Assert.True(firstDiff == mine.Length, $"{file} {info.Name} ({info.DType}): first differing byte {firstDiff} of {mine.Length}");
            checkedTensors++;
        }
        Assert.Equal(31, checkedTensors);
    }

    [Fact]
    public void QuantizeThenDequantize_Q8_0AndQ4_0_ErrorWithinOneStep()
    {
        float[] x = TestData.Uniform(32 * 9, seed: 7, scale: 3f);
        x[5] = 0;
        Array.Clear(x, 64, 32); // an all-zero block gives d = 0 and zeros back
        // Q8_0 rounds to the nearest of 255 levels (half a step); Q4_0's codes span -8..7 with d = max/-8, so the side
        // opposite the max clips at 7|d| (one step).
        foreach (var (t, steps, slack) in new[] { (DType.Q8_0, 127f, 0.51f), (DType.Q4_0, 8f, 1.01f) })
        {
            var blocks = new byte[DTypeInfo.ByteCount(t, x.Length)];
            Dequant.QuantizeRow(t, x, blocks);
            var y = new float[x.Length];
            Dequant.DequantizeRow(t, blocks, y);
            for (int b = 0; b < 9; b++)
            {
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[b * 32 + j]));
                for (int j = 0; j < 32; j++)
                    Assert.True(Math.Abs(y[b * 32 + j] - x[b * 32 + j]) <= amax / steps * slack + 1e-3 * amax + 1e-12, $"{t} block {b} element {j}");
            }
            Assert.All(y.AsSpan(64, 32).ToArray(), v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Quantize_F16AndBf16_MatchRoundToNearestEven()
    {
        float[] x = TestData.Uniform(37, seed: 3, scale: 100f);
        var h = new byte[74];
        Dequant.QuantizeRow(DType.F16, x, h);
        var bf = new byte[74];
        Dequant.QuantizeRow(DType.BF16, x, bf);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)x[i]), BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(2 * i)));
            Assert.Equal(Bf16.FromFloat(x[i]), BinaryPrimitives.ReadUInt16LittleEndian(bf.AsSpan(2 * i)));
        }
        Assert.Throws<NotSupportedException>(() => Dequant.QuantizeRow(DType.Q4_K, new float[256], new byte[144]));
    }
}
