// One entry of a safetensors header: name, dtype, shape and the byte range inside the data section.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Safetensors;

/// <summary>A tensor described by a safetensors header. Offsets are relative to the start of the data section.</summary>
/// <param name="Name">Tensor name as stored.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions, outermost first.</param>
/// <param name="Begin">First byte (relative to the data section).</param>
/// <param name="End">One past the last byte.</param>
public sealed record SafetensorsTensorInfo(string Name, DType DType, int[] Shape, long Begin, long End)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}
