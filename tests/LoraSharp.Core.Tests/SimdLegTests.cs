// The CI runs the Core tests twice: on the machine's widest vectors and again with AVX-512 switched off in the
// runtime (DOTNET_EnableAVX512=0; .NET 10 ignores the older DOTNET_EnableAVX512F=0 alone), as an AVX2-only machine
// would run them. The second leg sets
// LORASHARP_EXPECT_SIMD=256 and this test checks that the kernels really dispatch at that width there, so the leg
// cannot silently test the AVX-512 path twice.
using System.Runtime.Intrinsics;
using LoraSharp.Core;

namespace LoraSharp.Core.Tests;

public sealed class SimdLegTests
{
    [Fact]
    public void VectorWidth_IsWhatTheCiLegExpects()
    {
        string? expected = Environment.GetEnvironmentVariable("LORASHARP_EXPECT_SIMD");
        if (string.IsNullOrEmpty(expected))
        {
            // The default leg: the widest level the hardware has, nothing forced.
            Assert.Equal(Simd.Hardware, Simd.Level);
            return;
        }
        Assert.Equal(expected, Simd.Level switch { SimdLevel.V512 => "512", SimdLevel.V256 => "256", SimdLevel.V128 => "128", _ => "scalar" });
        if (expected == "256")
        {
            Assert.False(Vector512.IsHardwareAccelerated, "the AVX2 leg must run with AVX-512 switched off in the runtime");
            Assert.True(Vector256.IsHardwareAccelerated, "the AVX2 leg needs 256-bit vectors");
        }
    }
}
