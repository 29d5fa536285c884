// A model's own Jinja chat template (or a .jinja file) as the chat formatter of chat datasets. Rows are passed to
// the template whole: OpenAI "messages" keep every field of each message (tool_calls, tool_call_id, name,
// reasoning_content, ...), a row-level "tools" list becomes the template's tools variable, and ShareGPT
// "conversations" are mapped to role/content (human -> user, gpt -> assistant, system, tool). The trained spans
// are JinjaChatTemplate.RenderForTraining's: the template's {% generation %} blocks when it has them, else each
// assistant reply after the template's own generation prompt up to its end-of-turn marker.
using System.Text.Json;
using LoraSharp.Tokenizers.Chat;
using LoraSharp.Tokenizers.Chat.Jinja;

namespace LoraSharp.Training.Data;

/// <summary>A <see cref="JinjaChatTemplate"/> as an <see cref="IChatFormatter"/>.</summary>
public sealed class JinjaChatFormatter : IChatFormatter
{
    /// <summary>Wraps <paramref name="template"/>; <paramref name="name"/> names it in logs and training_prompt.json.</summary>
    public JinjaChatFormatter(JinjaChatTemplate template, string name, IReadOnlyDictionary<string, object?>? extraVariables = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        Template = template;
        Name = name;
        ExtraVariables = extraVariables;
    }

    /// <summary>The template.</summary>
    public JinjaChatTemplate Template { get; }

    /// <summary>Extra template variables (e.g. enable_thinking), as apply_chat_template's keyword arguments.</summary>
    public IReadOnlyDictionary<string, object?>? ExtraVariables { get; }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public string Render(IReadOnlyList<(string Role, string Content)> messages, out IReadOnlyList<(int Start, int Length)> assistantSpans)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var chat = Template.RenderForTraining(messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList(), ExtraVariables);
        assistantSpans = chat.AssistantSpans.Select(s => (s.Start, s.Length)).ToList();
        return chat.Text;
    }

    /// <summary>Renders one dataset row with all its message fields and tools.</summary>
    public RenderedChat RenderRow(DatasetRow row, string source)
    {
        var (messages, tools) = RowMessages(row, source);
        try
        {
            return Template.RenderForTraining(messages, tools, ExtraVariables);
        }
        catch (JinjaException e)
        {
            string what = e.IsRaised ? $"the chat template refuses this conversation: {e.Message}" : $"the chat template failed on this conversation: {e.Message}";
            throw new DatasetException(what, source, row.Number, row.Line, e);
        }
    }

    // The row's messages as template values, validated like ChatDataset.Messages but keeping every field.
    internal static (List<object?> Messages, object? Tools) RowMessages(DatasetRow row, string source)
    {
        // Role/content validation, ShareGPT role mapping and "has an assistant message" are ChatDataset's.
        var basic = ChatDataset.Messages(row, source, allowToolCalls: true);
        var v = row.Value;
        object? tools = v.TryGetProperty("tools", out var t) && t.ValueKind != JsonValueKind.Null ? t : null;
        if (!v.TryGetProperty("messages", out var list))
            return (basic.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(), tools);
        var result = new List<object?>();
        int i = 0;
        foreach (var m in list.EnumerateArray())
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var p in m.EnumerateObject()) d[p.Name] = p.Value;
            d["role"] = basic[i].Role;
            d["content"] = basic[i].Content; // "" for a tool-call message without content (templates test it as a string)
            result.Add(d);
            i++;
        }
        return (result, tools);
    }
}
