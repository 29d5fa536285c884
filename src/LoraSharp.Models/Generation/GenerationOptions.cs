// What a generation run does: how many tokens, how to sample, when to stop.
namespace LoraSharp.Models.Generation;

/// <summary>Options of <see cref="TextGenerator"/>.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most new tokens to generate.</summary>
    public int MaxNewTokens { get; init; } = 200;

    /// <summary>Sampling settings (greedy when temperature is 0).</summary>
    public SamplingSettings Sampling { get; init; } = new();

    /// <summary>Stop when the generated text contains any of these (the stop string is not returned).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Stop at the end-of-sequence token.</summary>
    public bool StopAtEos { get; init; } = true;

    /// <summary>Put BOS before the prompt when the tokenizer adds it (add_bos_token).</summary>
    public bool AddSpecialTokens { get; init; } = true;
}
