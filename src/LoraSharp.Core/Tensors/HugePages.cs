// Transparent huge pages for the large buffers that kernels stream: frozen weights (f32 panels, stored quantized
// rows) and big tensors. Linux backs an anonymous range with 2 MiB pages when it was advised so (madvise
// MADV_HUGEPAGE) before it is first touched; the usual THP setting ("madvise") gives them to nobody else. A weight
// streamed once per decoded token then takes one TLB miss per 2 MiB instead of per 4 KiB, and the hardware
// prefetcher is not stopped at every 4 KiB boundary: f32 decode at the SmolLM2-135M shape went from 64-69 to
// 94-101 tokens/s (same machine, alternating runs; docs/kernels.md). Advice only: where it is refused or the OS is
// not Linux, nothing changes but speed.
using System.Runtime.InteropServices;

namespace LoraSharp.Core.Tensors;

internal static unsafe partial class HugePages
{
    /// <summary>Bytes of one huge page (x86-64 and arm64 with 4 KiB base pages).</summary>
    public const long Size = 2L << 20;

    /// <summary>Allocations at least this large are placed and advised for huge pages.</summary>
    public const long Threshold = Size;

    /// <summary>Advises the whole huge pages inside [p, p + bytes) (call before the range is first touched).</summary>
    public static void Advise(void* p, long bytes)
    {
        if (!OperatingSystem.IsLinux()) return;
        nint start = ((nint)p + (nint)(Size - 1)) & ~(nint)(Size - 1);
        nint end = ((nint)p + (nint)bytes) & ~(nint)(Size - 1);
        if (end > start) _ = Madvise((void*)start, (nuint)(end - start), MadvHugePage);
    }

    private const int MadvHugePage = 14;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* address, nuint length, int advice);
}
