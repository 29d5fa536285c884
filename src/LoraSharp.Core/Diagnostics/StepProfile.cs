// Where a training step's time goes: wall-clock seconds per phase, summed over calls, when LORASHARP_PROFILE=1.
// Off (the default) every Start/Stop is a test of a static readonly bool the JIT folds away, so the instrumented
// model pays nothing. Not thread-safe by design: phases are timed on the thread that drives the step, around whole
// kernel calls (which parallelise inside), never inside a kernel.
using System.Diagnostics;

namespace LoraSharp.Core.Diagnostics;

/// <summary>The phases of a training step that <see cref="StepProfile"/> separates.</summary>
public enum StepPhase
{
    /// <summary>Embedding lookup.</summary>
    Embedding,
    /// <summary>RMSNorm forward and backward.</summary>
    Norm,
    /// <summary>Frozen projections' forward (x·Wᵀ).</summary>
    ProjForward,
    /// <summary>Frozen projections' input gradient (dy·W).</summary>
    ProjBackward,
    /// <summary>LoRA paths of every projection, forward (dropout, x·Aᵀ, z·Bᵀ, bias).</summary>
    LoraForward,
    /// <summary>LoRA paths' backward (dz, dA, dB, dx through A, dropout).</summary>
    LoraBackward,
    /// <summary>RoPE forward and backward.</summary>
    Rope,
    /// <summary>Attention core forward.</summary>
    AttentionForward,
    /// <summary>Attention core backward.</summary>
    AttentionBackward,
    /// <summary>SwiGLU forward, recompute and backward.</summary>
    SwiGlu,
    /// <summary>The output projection fused with cross-entropy (forward and backward).</summary>
    CrossEntropy,
    /// <summary>Buffer clears and residual copies.</summary>
    Copies,
    /// <summary>The optimizer step and zeroing gradients.</summary>
    Optimizer,
}

/// <summary>Per-phase wall-clock time of training steps (LORASHARP_PROFILE=1).</summary>
public static class StepProfile
{
    /// <summary>True when LORASHARP_PROFILE=1 was set at start-up.</summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("LORASHARP_PROFILE") == "1";

    private static readonly long[] s_ticks = new long[Enum.GetValues<StepPhase>().Length];

    /// <summary>A timestamp to pass to <see cref="Stop"/> (0 when profiling is off).</summary>
    public static long Start() => Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="phase"/>.</summary>
    public static void Stop(StepPhase phase, long start)
    {
        if (Enabled) s_ticks[(int)phase] += Stopwatch.GetTimestamp() - start;
    }

    /// <summary>Clears every phase (after warm-up).</summary>
    public static void Reset() => Array.Clear(s_ticks);

    /// <summary>Seconds per phase since the last <see cref="Reset"/>.</summary>
    public static IReadOnlyList<(StepPhase Phase, double Seconds)> Snapshot()
        => [.. Enum.GetValues<StepPhase>().Select(p => (p, s_ticks[(int)p] / (double)Stopwatch.Frequency))];
}
