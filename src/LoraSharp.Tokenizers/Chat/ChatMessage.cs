// One message of a conversation, as in Hugging Face chat templates: a role ("system", "user", "assistant") and its text.
namespace LoraSharp.Tokenizers.Chat;

/// <summary>A chat message.</summary>
/// <param name="Role">"system", "user" or "assistant".</param>
/// <param name="Content">The message text.</param>
public sealed record ChatMessage(string Role, string Content);
