// The seam between chat datasets and chat templates: render a conversation to text and say which character
// spans are the assistant's (the only trained part). The real templates (ChatML, Llama-2, Llama-3, Mistral, Alpaca)
// live in LoraSharp.Tokenizers.Chat and are adapted by ChatTemplateFormatter.
namespace LoraSharp.Training.Data;

/// <summary>Renders chat messages to the text a model is trained on.</summary>
public interface IChatFormatter
{
    /// <summary>A short name for logs and training_prompt.json (e.g. "chatml").</summary>
    string Name { get; }

    /// <summary>Renders the conversation.</summary>
    /// <param name="messages">Messages in order; roles are "system", "user", "assistant" (others as the template allows).</param>
    /// <param name="assistantSpans">Character spans of the rendered text to train on: each assistant reply including
    /// the end-of-turn marker that teaches the model to stop, excluding the assistant header.</param>
    /// <returns>The rendered text; it may contain special tokens written as text (e.g. &lt;|im_start|&gt;).</returns>
    string Render(IReadOnlyList<(string Role, string Content)> messages, out IReadOnlyList<(int Start, int Length)> assistantSpans);
}
