// NF4 (QLoRA): the 16 levels, the nearest-level code, bitsandbytes' byte layout, the quantize -> dequantize error
// bound the levels imply, double quantization of the block scales, and matmuls over double-quantized weights.
using System.Runtime.InteropServices;
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Quant;

public class Nf4Tests
{
    [Fact]
    public void Levels_AreSortedFromMinusOneToOne_WithExactZero()
    {
        var l = BlockNF4.Levels.ToArray();
        Assert.Equal(16, l.Length);
        Assert.Equal(-1f, l[0]);
        Assert.Equal(0f, l[7]);
        Assert.Equal(1f, l[15]);
        for (int i = 1; i < 16; i++) Assert.True(l[i] > l[i - 1]);
    }

    [Fact]
    public void Code_IsTheNearestLevel_TiesGoingDown()
    {
        var l = BlockNF4.Levels.ToArray();
        var rng = new Random(1);
        for (int i = 0; i < 20000; i++)
        {
            float x = (float)(rng.NextDouble() * 2 - 1);
            int c = BlockNF4.Code(x);
            for (int j = 0; j < 16; j++) Assert.True(Math.Abs(x - l[c]) <= Math.Abs(x - l[j]), $"x = {x}: code {c} but level {j} is nearer");
        }
        for (int c = 0; c < 15; c++)
        {
            float mid = (float)(((double)l[c] + l[c + 1]) / 2);
            Assert.Equal(c, BlockNF4.Code(mid));
            Assert.Equal(c + 1, BlockNF4.Code(MathF.BitIncrement(mid)));
        }
        Assert.Equal(0, BlockNF4.Code(-1f));
        Assert.Equal(15, BlockNF4.Code(1f));
    }

    [Fact]
    public void QuantizeRow_StoresAbsmaxAndHighNibbleFirst()
    {
        var x = new float[64];
        x[0] = -2f;   // absmax 2, code 0
        x[1] = 2f;    // code 15
        x[2] = 0f;    // code 7
        var blocks = new byte[36];
        BlockNF4.QuantizeRow(x, blocks);
        Assert.Equal(2f, MemoryMarshal.Read<float>(blocks));
        Assert.Equal(0x0F, blocks[4]);          // element 0 high (0), element 1 low (15)
        Assert.Equal(0x77, blocks[5]);          // elements 2 and 3 are zero: code 7 twice
    }

    [Fact]
    public void QuantizeDequantize_ErrorWithinHalfTheGapOfTheLevels()
    {
        var l = BlockNF4.Levels.ToArray();
        double maxHalfGap = Enumerable.Range(0, 15).Max(i => (l[i + 1] - l[i]) / 2.0);
        Assert.InRange(maxHalfGap, 0.1518, 0.1520);   // (-0.6961928 - -1) / 2: the widest gap is at the negative end
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var rng = new Random(seed);
            var x = new float[64 * 40];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(Normal(rng) * (1 + i / 64 % 5));   // blocks of different scales
            var blocks = new byte[x.Length / 64 * 36];
            BlockNF4.QuantizeRow(x, blocks);
            var y = new float[x.Length];
            Dequant.DequantizeRow(DType.NF4, blocks, y);
            for (int b = 0; b < x.Length / 64; b++)
            {
                float absmax = MemoryMarshal.Read<float>(blocks.AsSpan(b * 36));
                Assert.Equal(x.AsSpan(b * 64, 64).ToArray().Max(MathF.Abs), absmax);
                for (int i = b * 64; i < b * 64 + 64; i++)
                {
                    // The bound implied by the levels: half the gap around x / absmax, times absmax (plus float rounding).
                    double n = x[i] / absmax;
                    int hi = Math.Clamp(Array.FindIndex(l, v => v >= n), 1, 15);
                    double bound = absmax * (l[hi] - l[hi - 1]) / 2 * (1 + 1e-6) + 1e-7 * absmax;
                    Assert.True(Math.Abs(y[i] - x[i]) <= bound, $"element {i}: {x[i]} -> {y[i]}, bound {bound}");
                    Assert.True(Math.Abs(y[i] - x[i]) <= absmax * maxHalfGap * (1 + 1e-6));
                }
            }
        }
    }

    [Fact]
    public void QuantizeRow_RowNotWholeBlocks_ThrowsNamingNf4()
    {
        var e = Assert.Throws<ArgumentException>(() => BlockNF4.QuantizeRow(new float[172], new byte[36 * 3]));
        Assert.Contains("NF4", e.Message);
        Assert.Contains("64", e.Message);
    }

    [Fact]
    public void DynamicMap_Has256SortedValues_WithZeroAndOne()
    {
        var map = Nf4DoubleQuant.DynamicMap;
        Assert.Equal(256, map.Count);
        for (int i = 1; i < 256; i++) Assert.True(map[i] > map[i - 1], $"map[{i}] = {map[i]} <= map[{i - 1}]");
        Assert.Contains(0f, map);
        Assert.Equal(1f, map[255]);
        Assert.True(map[0] > -1f && map[0] < -0.99f);
    }

    [Fact]
    public void DoubleQuant_AbsmaxError_WithinHalfAMapGapOfTheGroupScale()
    {
        var rng = new Random(4);
        var absmax = Enumerable.Range(0, 1000).Select(_ => (float)(0.05 + rng.NextDouble() * 0.1)).ToArray();
        var codes = new byte[absmax.Length];
        var absmax2 = new float[4];
        float offset = Nf4DoubleQuant.Quantize(absmax, codes, absmax2);
        Assert.Equal(absmax.Average(), offset, 1e-6);
        var map = Nf4DoubleQuant.DynamicMap;
        double maxGap = Enumerable.Range(1, 255).Max(i => map[i] - map[i - 1]);
        for (int i = 0; i < absmax.Length; i++)
        {
            float back = Nf4DoubleQuant.Dequantize(codes, absmax2, offset, i);
            Assert.True(Math.Abs(back - absmax[i]) <= absmax2[i / 256] * maxGap / 2 + 1e-7, $"block {i}: {absmax[i]} -> {back}");
        }
    }

    [Fact]
    public void DoubleQuantizedWeight_Matmuls_EqualReferenceOnItsDecodedValues()
    {
        const int n = 70, k = 128, m = 9;
        using var w = QuantTestData.RandomTensor(DType.NF4, n, k, seed: 3, amplitude: 0.5);
        var packed = PackedWeight.FromNf4DoubleQuant(w);
        Assert.True(packed.DoubleQuantized);
        // What the double-quantized weight holds: NF4 codes times the double-quantized absmax.
        var blocks = w.Bytes;
        int nb = n * k / 64;
        var absmax = new float[nb];
        for (int b = 0; b < nb; b++) absmax[b] = MemoryMarshal.Read<float>(blocks[(b * 36)..]);
        var codes = new byte[nb];
        var absmax2 = new float[(nb + 255) / 256];
        float offset = Nf4DoubleQuant.Quantize(absmax, codes, absmax2);
        var wf = new float[n * k];
        var levels = BlockNF4.Levels;
        for (int b = 0; b < nb; b++)
        {
            float a = Nf4DoubleQuant.Dequantize(codes, absmax2, offset, b);
            for (int j = 0; j < 32; j++)
            {
                wf[b * 64 + 2 * j] = levels[blocks[b * 36 + 4 + j] >> 4] * a;
                wf[b * 64 + 2 * j + 1] = levels[blocks[b * 36 + 4 + j] & 15] * a;
            }
        }
        foreach (int rows in new[] { 1, m })
        {
            var x = TestData.Uniform(rows * k, 5);
            var y = new float[rows * n];
            var yRef = new float[rows * n];
            MatMul.Forward(x, packed, y, rows);
            MatMul.Reference.Forward(x, wf, yRef, rows, k, n);
            TestData.AssertClose(y, yRef, atol: 1e-4, rtol: 1e-5, what: $"double-quantized forward, M = {rows}");
        }
        var dy = TestData.Uniform(m * n, 6);
        var dx = new float[m * k];
        var dxRef = new float[m * k];
        MatMul.BackwardInput(dy, packed, dx, m);
        MatMul.Reference.BackwardInput(dy, wf, dxRef, m, n, k);
        TestData.AssertClose(dx, dxRef, atol: 1e-4, rtol: 1e-5, what: "double-quantized backward input");
        Assert.True(packed.Bytes < PackedWeight.FromStored(w).Bytes * 0.93, "double quantization saves about 8% of NF4's bytes");
    }

    private static double Normal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
