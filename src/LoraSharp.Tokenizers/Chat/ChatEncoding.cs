// A rendered chat encoded to ids with the assistant-token mask training uses.
namespace LoraSharp.Tokenizers.Chat;

/// <summary>A rendered conversation encoded to ids, with the tokens that belong to assistant replies marked.</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="AssistantMask">True for tokens inside an assistant span (train on these), one per id.</param>
/// <param name="AssistantTokenSpans">Token index ranges [Start, End) of each assistant span.</param>
public sealed record ChatEncoding(int[] Ids, bool[] AssistantMask, IReadOnlyList<TextSpan> AssistantTokenSpans);
