// One GGUF tensor info: name, ggml dims (innermost first, as stored), type and data offset.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Gguf;

/// <summary>A tensor described by a GGUF header.</summary>
/// <param name="Name">Tensor name as stored (e.g. "blk.0.attn_q.weight").</param>
/// <param name="DType">Element type.</param>
/// <param name="Dims">ggml ne[]: innermost (row length) first.</param>
/// <param name="Offset">Byte offset relative to the data section (a multiple of the alignment).</param>
/// <param name="ByteLength">Bytes of data.</param>
public sealed record GgufTensorInfo(string Name, DType DType, long[] Dims, long Offset, long ByteLength)
{
    /// <summary>Shape outermost first (PyTorch order): Dims reversed. ggml ne = [64, 32] is shape [32, 64].</summary>
    public int[] Shape => Dims.Reverse().Select(d => (int)d).ToArray();

    /// <summary>Number of elements.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);
}
