// The output of a chat template: the text, and which character ranges hold assistant replies (with their end marker),
// so training can compute the loss on assistant tokens only.
namespace LoraSharp.Tokenizers.Chat;

/// <summary>A rendered conversation.</summary>
/// <param name="Text">The prompt text (special tokens written literally, e.g. <c>&lt;|im_start|&gt;</c>; encode it with special-token parsing on).</param>
/// <param name="AssistantSpans">Ranges of <paramref name="Text"/> holding each assistant reply and its end marker (EOS, <c>&lt;|im_end|&gt;</c>, ...).</param>
public sealed record RenderedChat(string Text, IReadOnlyList<TextSpan> AssistantSpans);
