// A [Start, End) range of characters or tokens.
namespace LoraSharp.Tokenizers.Chat;

/// <summary>A character range [Start, End) of a rendered chat.</summary>
public readonly record struct TextSpan(int Start, int End)
{
    /// <summary>End - Start.</summary>
    public int Length => End - Start;
}
