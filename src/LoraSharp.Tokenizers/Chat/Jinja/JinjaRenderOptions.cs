// Limits and the clock of one render. The limits stop hostile or broken templates (endless loops, exponential
// strings, deep recursion) with a clear error instead of a hang; real chat templates use a tiny fraction of them.
namespace LoraSharp.Tokenizers.Chat.Jinja;

/// <summary>Options of <see cref="JinjaTemplate.Render"/>.</summary>
public sealed record JinjaRenderOptions
{
    /// <summary>The time <c>strftime_now</c> formats; null: the local clock.</summary>
    public DateTime? Now { get; init; }

    /// <summary>Most expression evaluations and loop iterations of one render.</summary>
    public long MaxSteps { get; init; } = 5_000_000;

    /// <summary>Most characters of the output, and of any one string the template builds.</summary>
    public int MaxOutputChars { get; init; } = 16 << 20;

    /// <summary>Deepest macro call nesting.</summary>
    public int MaxCallDepth { get; init; } = 64;

    /// <summary>Most items one range() may produce.</summary>
    public long MaxRange { get; init; } = 1_000_000;
}
