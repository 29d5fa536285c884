// Memory that can be dropped from the process and read back on demand: a read-only memory-mapped file, whose pages
// the kernel can always fetch from the file again. Tensor.Consume uses it so that a loader's views of a checkpoint do
// not stay resident beside the model's own copy of the weights.
namespace LoraSharp.Core.Tensors;

/// <summary>Owner of memory whose pages may be dropped from the process without losing data.</summary>
public interface IEvictable
{
    /// <summary>Drops the whole pages inside [address, address + bytes) from resident memory (their contents stay valid).</summary>
    void Evict(nint address, long bytes);
}
