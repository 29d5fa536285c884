// Chat datasets: JSON array or JSONL rows holding either "messages": [{"role", "content"}] (OpenAI / Hugging Face
// style) or ShareGPT "conversations": [{"from", "value"}] (from: human -> user, gpt -> assistant, system -> system;
// user/assistant are accepted too). Each conversation is rendered by an IChatFormatter and tokenized with offsets;
// a token is trained when it lies inside an assistant span, so the loss covers assistant turns only. The templates
// of LoraSharp.Tokenizers.Chat plug in through ChatTemplateFormatter; ChatMLFormatter needs no tokenizer; a model's
// own Jinja template plugs in through JinjaChatFormatter, which sees the whole row (tool calls, tools, reasoning).
// ChatOptions.TrainOnInputs trains every token instead.
using System.Text.Json;
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Builds samples from chat conversations.</summary>
public static class ChatDataset
{
    /// <summary>Reads <paramref name="path"/> (JSON array or JSONL) and renders every conversation with <paramref name="formatter"/>.</summary>
    public static BuiltDataset Build(string path, IChatFormatter formatter, Tokenizer tokenizer, ChatOptions options) =>
        Build(JsonRows.Read(path), path, formatter, tokenizer, options);

    /// <summary>Renders already-read rows; <paramref name="source"/> names them in errors.</summary>
    public static BuiltDataset Build(IReadOnlyList<DatasetRow> rows, string source, IChatFormatter formatter, Tokenizer tokenizer, ChatOptions options)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(formatter);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        SampleEncoder.CheckCutoff(options.CutoffLength, options.ContextLength);
        var enc = new SampleEncoder(tokenizer, options.CutoffLength, options.ExcessLength);
        foreach (var row in rows)
        {
            string text;
            IReadOnlyList<(int Start, int Length)> spans;
            if (formatter is JinjaChatFormatter jinja)
            {
                var chat = jinja.RenderRow(row, source);
                text = chat.Text;
                spans = chat.AssistantSpans.Select(s => (s.Start, s.Length)).ToList();
            }
            else
            {
                var messages = Messages(row, source);
                try
                {
                    text = formatter.Render(messages, out spans);
                }
                catch (Exception e) when (e is ArgumentException or Tokenizers.TokenizerFormatException)
                {
                    throw new DatasetException($"chat template {formatter.Name} cannot render this conversation: {e.Message}", source, row.Number, row.Line, e);
                }
            }
            var tokens = enc.Encode(text, options.AddSpecialTokens, parseSpecialTokens: true);
            int[] labels = options.TrainOnInputs ? SampleEncoder.Label(tokens, _ => true) : SampleEncoder.Label(tokens, t => InAny(t.Index, t.Length, spans));
            enc.Add(tokens.Select(t => t.Id).ToArray(), labels);
        }
        return enc.Finish(source, rows.Count, new Dictionary<string, string> { ["template_type"] = "chat", ["chat_template"] = formatter.Name });
    }

    private static bool InAny(int index, int length, IReadOnlyList<(int Start, int Length)> spans)
    {
        foreach (var (s, l) in spans)
            if (index >= s && index < s + l && index + length <= s + l) return true;
        return false;
    }

    /// <summary>The messages of a row, with ShareGPT roles mapped; throws naming the row and field when malformed.</summary>
    /// <param name="row">The row.</param>
    /// <param name="source">The file, for errors.</param>
    /// <param name="allowToolCalls">Accept OpenAI messages with "content": null (or none) when they carry "tool_calls", and
    /// ShareGPT "tool" / "function_call" / "observation" turns (Jinja templates render them); their content is "".</param>
    public static List<(string Role, string Content)> Messages(DatasetRow row, string source, bool allowToolCalls = false)
    {
        var v = row.Value;
        bool share;
        JsonElement list;
        if (v.TryGetProperty("messages", out list)) share = false;
        else if (v.TryGetProperty("conversations", out list)) share = true;
        else
            throw new DatasetException($"a chat row needs \"messages\" ([{{\"role\": \"user\", \"content\": \"...\"}}, ...]) or ShareGPT \"conversations\" ([{{\"from\": \"human\", \"value\": \"...\"}}, ...]); this row has {JsonRows.Describe(v)}.",
                source, row.Number, row.Line);
        string field = share ? "conversations" : "messages";
        if (list.ValueKind != JsonValueKind.Array)
            throw new DatasetException($"\"{field}\" must be an array of messages, not {JsonRows.Kind(list.ValueKind)}.", source, row.Number, row.Line);
        string roleKey = share ? "from" : "role", contentKey = share ? "value" : "content";
        var result = new List<(string, string)>();
        int i = 0;
        foreach (var m in list.EnumerateArray())
        {
            string where = $"{field}[{i}]";
            if (m.ValueKind != JsonValueKind.Object)
                throw new DatasetException($"{where} must be an object with \"{roleKey}\" and \"{contentKey}\", not {JsonRows.Kind(m.ValueKind)}.", source, row.Number, row.Line);
            if (!m.TryGetProperty(roleKey, out var r) || r.ValueKind != JsonValueKind.String)
                throw new DatasetException($"{where} has no string \"{roleKey}\" ({JsonRows.Describe(m)}).", source, row.Number, row.Line);
            bool hasContent = m.TryGetProperty(contentKey, out var c) && c.ValueKind == JsonValueKind.String;
            bool toolCallOnly = allowToolCalls && !hasContent && (!m.TryGetProperty(contentKey, out var c0) || c0.ValueKind == JsonValueKind.Null)
                && m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind == JsonValueKind.Array;
            if (!hasContent && !toolCallOnly)
                throw new DatasetException($"{where} has no string \"{contentKey}\" ({JsonRows.Describe(m)}).", source, row.Number, row.Line);
            string role = r.GetString()!;
            if (share)
            {
                role = role switch
                {
                    "human" or "user" => "user",
                    "gpt" or "assistant" => "assistant",
                    "system" => "system",
                    "tool" or "function_call" or "observation" when allowToolCalls => "tool",
                    _ => throw new DatasetException($"{where} has \"from\": \"{role}\"; ShareGPT roles are human, gpt and system (user and assistant are accepted too).",
                        source, row.Number, row.Line),
                };
            }
            result.Add((role, hasContent ? c.GetString()! : ""));
            i++;
        }
        if (result.Count == 0) throw new DatasetException($"\"{field}\" is empty.", source, row.Number, row.Line);
        if (!result.Any(m => m.Item1 == "assistant"))
            throw new DatasetException($"\"{field}\" has no assistant message (role \"assistant\"{(share ? " / from \"gpt\"" : "")}), so nothing would be trained.", source, row.Number, row.Line);
        return result;
    }
}
