// Which vector width kernels use. Every kernel dispatches Vector512 -> Vector256 -> Vector128 -> scalar on
// Simd.Level, read once at the kernel's entry (on the calling thread) and passed to its workers.
// LORASHARP_SIMD=scalar|128|256|512 caps the level for a process; Simd.Force caps it for one thread (tests),
// so every path runs on this AVX-512 machine and AVX2-only or non-SIMD machines stay correct.
using System.Runtime.Intrinsics;

namespace LoraSharp.Core;

/// <summary>Vector width a kernel may use.</summary>
public enum SimdLevel
{
    /// <summary>Plain scalar loops.</summary>
    Scalar = 0,
    /// <summary>Vector128 (SSE / NEON).</summary>
    V128 = 128,
    /// <summary>Vector256 (AVX2).</summary>
    V256 = 256,
    /// <summary>Vector512 (AVX-512).</summary>
    V512 = 512,
}

/// <summary>The active vector width: hardware capability, capped by the environment and by per-thread overrides.</summary>
public static class Simd
{
    [ThreadStatic] private static SimdLevel? t_forced;

    /// <summary>The widest level the hardware accelerates.</summary>
    public static SimdLevel Hardware { get; } =
        Vector512.IsHardwareAccelerated ? SimdLevel.V512 :
        Vector256.IsHardwareAccelerated ? SimdLevel.V256 :
        Vector128.IsHardwareAccelerated ? SimdLevel.V128 : SimdLevel.Scalar;

    /// <summary>The process-wide level: hardware capped by LORASHARP_SIMD.</summary>
    public static SimdLevel Process { get; } = Min(Hardware, Parse(Environment.GetEnvironmentVariable("LORASHARP_SIMD")));

    /// <summary>The level kernels use on this thread now.</summary>
    public static SimdLevel Level => t_forced is { } f ? Min(f, Process) : Process;

    /// <summary>Caps the level on this thread until the returned scope is disposed (for tests and benchmarks).</summary>
    public static Scope Force(SimdLevel level)
    {
        var previous = t_forced;
        t_forced = level;
        return new Scope(previous);
    }

    /// <summary>Restores the previous level when disposed.</summary>
    public readonly struct Scope(SimdLevel? previous) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => t_forced = previous;
    }

    private static SimdLevel Min(SimdLevel a, SimdLevel b) => a < b ? a : b;

    private static SimdLevel Parse(string? s) => s?.Trim().ToLowerInvariant() switch
    {
        null or "" => SimdLevel.V512,
        "scalar" or "0" or "none" => SimdLevel.Scalar,
        "128" or "v128" => SimdLevel.V128,
        "256" or "v256" or "avx2" => SimdLevel.V256,
        "512" or "v512" or "avx512" => SimdLevel.V512,
        _ => throw new UserErrorException($"LORASHARP_SIMD='{s}' is not one of scalar, 128, 256, 512."),
    };
}
