// Facts about the machine and runtime that decide LoraSharp's speed, for `lorasharp system` and benchmark headers.
using System.Runtime.InteropServices;
using LoraSharp.Core;
using LoraSharp.Core.Threading;

namespace LoraSharp.App;

/// <summary>Describes the machine as LoraSharp uses it.</summary>
public static class SystemInfo
{
    /// <summary>Name/value pairs: runtime, OS, CPU architecture, SIMD levels, threads, memory.</summary>
    public static IReadOnlyList<(string Name, string Value)> Describe()
    {
        var gc = GC.GetGCMemoryInfo();
        return
        [
            ("version", typeof(SystemInfo).Assembly.GetName().Version?.ToString(3) ?? "?"),
            ("runtime", RuntimeInformation.FrameworkDescription),
            ("os", RuntimeInformation.OSDescription),
            ("architecture", RuntimeInformation.ProcessArchitecture.ToString()),
            ("simd hardware", Describe(Simd.Hardware)),
            ("simd in use", Describe(Simd.Process) + " (LORASHARP_SIMD caps it)"),
            ("threads", $"{Threads.Hardware} (LORASHARP_THREADS sets it)"),
            ("memory", $"{gc.TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024):0.0} GiB available to the process"),
        ];
    }

    private static string Describe(SimdLevel level) => level switch
    {
        SimdLevel.V512 => "Vector512 (AVX-512)",
        SimdLevel.V256 => "Vector256 (AVX2)",
        SimdLevel.V128 => "Vector128",
        _ => "scalar",
    };
}
