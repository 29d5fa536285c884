using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Tests.Tensors;

public class TensorTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(257)]
    [InlineData(100_003)]
    public unsafe void Zeros_IsAlignedAndZeroed(int n)
    {
        using var t = Tensor.Zeros(DType.F32, n);
        Assert.Equal(0, t.Pointer % Tensor.Alignment);
        Assert.Equal(n, t.ElementCount);
        Assert.Equal(4L * n, t.ByteLength);
        Assert.All(t.Floats.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Quantized_ByteLength_FollowsBlocks()
    {
        using var t = Tensor.Zeros(DType.Q4_0, 4, 64);
        Assert.Equal(4 * 2 * 18, t.ByteLength);
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(DType.Q4_0, 3, 10));
    }

    [Fact]
    public void ElementCount_BeyondIntRange_IsRepresentable()
    {
        // A 7B-class model has tensors of > 2^31 bytes (not elements) and a total far beyond int: shapes use long counts.
        Assert.Equal(32000L * 4096 * 4, DTypeInfo.ByteCount(DType.F32, 32000L * 4096));
        Assert.Equal(7_000_000_000L * 2, DTypeInfo.ByteCount(DType.BF16, 7_000_000_000L));
    }

    [Fact]
    public void FromFloats_WrongCount_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromFloats(new float[5], 2, 3));
        Assert.Contains("[2, 3]", e.Message);
    }

    [Fact]
    public void Floats_OnNonF32_Throws()
    {
        using var t = Tensor.Zeros(DType.BF16, 4);
        Assert.Throws<InvalidOperationException>(() => t.Floats.Length);
    }

    [Fact]
    public void Dispose_ThenAccess_Throws()
    {
        var t = Tensor.Zeros(DType.F32, 4);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.Floats.Length);
    }

    [Fact]
    public void MoveOrCopy_OwnedTensor_HandsOverItsMemory_AndIsLeftDisposed()
    {
        var t = Tensor.FromFloats([1f, 2, 3, 4], 2, 2);
        nint data = t.Pointer;
        using var moved = t.MoveOrCopy();
        Assert.Equal(data, moved.Pointer);
        Assert.Equal([1f, 2, 3, 4], moved.Floats.ToArray());
        Assert.Throws<ObjectDisposedException>(() => t.Floats.Length);
        t.Dispose();   // a second owner never frees it
        Assert.Equal(4f, moved.Floats[3]);
    }

    [Fact]
    public unsafe void MoveOrCopy_View_CopiesAndLeavesTheViewUsable()
    {
        var backing = new float[] { 5f, 6f };
        fixed (float* p = backing)
        {
            using var view = Tensor.View((nint)p, DType.F32, [2]);
            using var copy = view.MoveOrCopy();
            Assert.NotEqual(view.Pointer, copy.Pointer);
            Assert.Equal([5f, 6f], copy.Floats.ToArray());
            Assert.Equal(6f, view.Floats[1]);
        }
    }
}
