// A frozen NF4 weight W [N, K] with double-quantized block scales (QLoRA's bnb_4bit_use_double_quant): the 4-bit
// codes (K/2 bytes a row, high nibble first), one 8-bit code per 64-weight block, and one f32 scale per 256
// blocks plus a tensor-wide offset (Quant/Nf4DoubleQuant.cs). 4.127 bits a weight instead of NF4's 4.5.
// Decoded values are BlockNF4's with absmax replaced by its double-quantized approximation.
// Not here: single-level NF4 (a StoredPanelSource of DType.NF4 rows).
using System.Runtime.InteropServices;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>NF4 W [N, K] with 8-bit block scales, decoded on demand.</summary>
internal sealed unsafe class Nf4DoubleQuantSource : DecodedPanelSource
{
    private readonly byte[] _codes;       // (N, K/2): 4-bit codes, block after block
    private readonly byte[] _scaleCodes;  // (N * K/64): the 8-bit code of each block's absmax
    private readonly float[] _absmax2;    // (ceil(N * K/64 / 256)): second-level scales
    private readonly float _offset;       // mean absmax of the tensor

    /// <summary>Re-encodes an NF4 tensor [N, K] (K % 64 == 0) with double-quantized absmax values.</summary>
    public Nf4DoubleQuantSource(Tensor nf4)
        : base(nf4.Shape[0], nf4.Shape[1], BlockNF4.BlockSize)
    {
        if (nf4.DType != DType.NF4 || nf4.Shape.Length != 2)
            throw new ArgumentException($"Double quantization needs a 2-D NF4 tensor, got {nf4.DType} {nf4.ShapeText}.");
        long blocks = (long)N * (K / BlockNF4.BlockSize);
        _codes = GC.AllocateUninitializedArray<byte>(checked((int)(blocks * 32)), pinned: true);
        _scaleCodes = new byte[checked((int)blocks)];
        _absmax2 = new float[(blocks + Nf4DoubleQuant.GroupSize - 1) / Nf4DoubleQuant.GroupSize];
        var absmax = new float[blocks];
        var src = nf4.Bytes;
        for (long b = 0; b < blocks; b++)
        {
            var blk = src.Slice((int)(b * BlockNF4.BlockBytes), BlockNF4.BlockBytes);
            absmax[b] = MemoryMarshal.Read<float>(blk);
            blk[4..].CopyTo(_codes.AsSpan((int)(b * 32), 32));
        }
        _offset = Nf4DoubleQuant.Quantize(absmax, _scaleCodes, _absmax2);
    }

    public override long Bytes => _codes.LongLength + _scaleCodes.LongLength + _absmax2.LongLength * sizeof(float) + sizeof(float);

    public override void DequantizeRow(int n, int k0, int count, float* dst)
    {
        var level = Simd.Level;
        long first = (long)n * (K / BlockNF4.BlockSize) + k0 / BlockNF4.BlockSize;
        int blocks = count / BlockNF4.BlockSize;
        for (int b = 0; b < blocks; b++)
        {
            float absmax = Nf4DoubleQuant.Dequantize(_scaleCodes, _absmax2, _offset, first + b);
            BlockNF4.DecodeCodes(ref _codes[(first + b) * 32], absmax, ref dst[b * BlockNF4.BlockSize], level);
        }
    }
}
