// The output of a chat template: the text, and which character ranges hold assistant replies (with their end marker),
// so training can compute the loss on assistant tokens only.
namespace LoraSharp.Tokenizers.Chat;

/// <summary>A character range [Start, End) of a rendered chat.</summary>
public readonly record struct TextSpan(int Start, int End)
{
    /// <summary>End - Start.</summary>
    public int Length => End - Start;
}

/// <summary>A rendered conversation.</summary>
/// <param name="Text">The prompt text (special tokens written literally, e.g. <c>&lt;|im_start|&gt;</c>; encode it with special-token parsing on).</param>
/// <param name="AssistantSpans">Ranges of <paramref name="Text"/> holding each assistant reply and its end marker (EOS, <c>&lt;|im_end|&gt;</c>, ...).</param>
public sealed record RenderedChat(string Text, IReadOnlyList<TextSpan> AssistantSpans);

/// <summary>A rendered conversation encoded to ids, with the tokens that belong to assistant replies marked.</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="AssistantMask">True for tokens inside an assistant span (train on these), one per id.</param>
/// <param name="AssistantTokenSpans">Token index ranges [Start, End) of each assistant span.</param>
public sealed record ChatEncoding(int[] Ids, bool[] AssistantMask, IReadOnlyList<TextSpan> AssistantTokenSpans);
