// Adapts a chat template of LoraSharp.Tokenizers.Chat (ChatML, Llama-2, Llama-3, Mistral, Alpaca, Zephyr, Phi-3)
// to IChatFormatter, writing the tokenizer's own BOS/EOS texts where the template uses them. It adds no generation
// prompt (training data ends with the last reply).
using LoraSharp.Tokenizers;
using LoraSharp.Tokenizers.Chat;

namespace LoraSharp.Training.Data;

/// <summary>A <see cref="ChatTemplate"/> as an <see cref="IChatFormatter"/>.</summary>
public sealed class ChatTemplateFormatter : IChatFormatter
{
    private readonly ChatTemplate _template;
    private readonly string _bos, _eos;

    /// <summary>Wraps <paramref name="template"/>; BOS/EOS texts come from <paramref name="tokenizer"/> (default &lt;s&gt;, &lt;/s&gt;).</summary>
    public ChatTemplateFormatter(ChatTemplate template, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _template = template;
        _bos = tokenizer.IdToToken(tokenizer.BosTokenId) ?? "<s>";
        _eos = tokenizer.IdToToken(tokenizer.EosTokenId) ?? "</s>";
    }

    /// <summary>The template by name (chatml, llama2, llama3, mistral, alpaca, zephyr, phi3).</summary>
    public static ChatTemplateFormatter FromName(string name, Tokenizer tokenizer) => new(ChatTemplate.FromName(name), tokenizer);

    /// <inheritdoc />
    public string Name => _template.Name;

    /// <inheritdoc />
    public string Render(IReadOnlyList<(string Role, string Content)> messages, out IReadOnlyList<(int Start, int Length)> assistantSpans)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var chat = _template.Render(messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList(), addGenerationPrompt: false, _bos, _eos);
        assistantSpans = chat.AssistantSpans.Select(s => (s.Start, s.Length)).ToList();
        return chat.Text;
    }
}
