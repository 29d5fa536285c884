// The ChatML chat template as an IChatFormatter: "<|im_start|>{role}\n{content}<|im_end|>\n" per message. The
// assistant span is the reply plus its "<|im_end|>". It does not add a system prompt of its own or a generation
// prompt; it is here so chat datasets work before the templates of LoraSharp.Tokenizers.Chat are plugged in.
using System.Text;

namespace LoraSharp.Training.Data;

/// <summary>ChatML rendering with assistant spans.</summary>
public sealed class ChatMLFormatter : IChatFormatter
{
    /// <inheritdoc />
    public string Name => "chatml";

    /// <inheritdoc />
    public string Render(IReadOnlyList<(string Role, string Content)> messages, out IReadOnlyList<(int Start, int Length)> assistantSpans)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var sb = new StringBuilder();
        var spans = new List<(int, int)>();
        foreach (var (role, content) in messages)
        {
            sb.Append("<|im_start|>").Append(role).Append('\n');
            int start = sb.Length;
            sb.Append(content).Append("<|im_end|>");
            if (role == "assistant") spans.Add((start, sb.Length - start));
            sb.Append('\n');
        }
        assistantSpans = spans;
        return sb.ToString();
    }
}
