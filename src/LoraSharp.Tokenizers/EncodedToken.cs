// One token of an encoding: its id, its piece (vocabulary string) and where it came from in the input text.
// It does not carry type ids or attention masks (single sequences only).
namespace LoraSharp.Tokenizers;

/// <summary>
/// A token produced by <see cref="Tokenizer.EncodeToTokens(string, bool, bool)"/>.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Value">The vocabulary piece (e.g. <c>▁Hello</c>, <c>ĠHello</c>, <c>&lt;0x0A&gt;</c>, <c>&lt;s&gt;</c>).</param>
/// <param name="Index">Start of the span of the input text (UTF-16 index) the token covers.</param>
/// <param name="Length">Length of that span in UTF-16 code units; 0 for tokens that cover no text (BOS/EOS).
/// A token holding only part of a character (byte fallback, byte-level pieces) reports the whole character.</param>
public readonly record struct EncodedToken(int Id, string Value, int Index, int Length)
{
    /// <summary>One past the last UTF-16 index covered.</summary>
    public int End => Index + Length;
}
