// A token matched literally in the input text before BPE (Hugging Face "added_tokens", GGUF control/user-defined tokens).
namespace LoraSharp.Tokenizers;

/// <summary>
/// A token that is split out of the text before BPE runs, as Hugging Face <c>added_tokens</c> entries are.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The literal text that is matched.</param>
/// <param name="Special">True for special tokens (BOS/EOS/control): they are only matched when special-token parsing is on,
/// and <c>skipSpecialTokens</c> drops them when decoding. Non-special added tokens are always matched.</param>
/// <param name="LStrip">Swallow whitespace on the left of a match.</param>
/// <param name="RStrip">Swallow whitespace on the right of a match.</param>
/// <param name="SingleWord">Only match when not inside a word (no letter/digit/underscore directly before or after).</param>
public sealed record AddedToken(int Id, string Content, bool Special = true, bool LStrip = false, bool RStrip = false, bool SingleWord = false);
