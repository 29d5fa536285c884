// A model's own chat template (tokenizer_config.json "chat_template", a chat_template.jinja file, or GGUF
// tokenizer.chat_template) rendered by the Jinja interpreter with the variables transformers' apply_chat_template
// passes: messages, tools, documents, add_generation_prompt, bos_token, eos_token and any extra keyword (for
// example enable_thinking). For training it also says which characters are the assistant's:
//   * A template with {% generation %} blocks marks them itself; those spans are used exactly (as transformers'
//     return_assistant_tokens_mask does).
//   * Otherwise every assistant message's trained span is what the model itself would write after the template's
//     own generation prompt: it starts right after that prompt (found as the text add_generation_prompt=true adds
//     to the conversation before this message) when the message's output begins with it, else at the first
//     character that came from the message's content; it ends where the template stops writing this message (the
//     end of its loop iteration: the reply, any template-written <think> or tool-call text, and the end-of-turn
//     marker), minus trailing whitespace. Characters are attributed to messages by the interpreter, not by
//     searching the text, so repeated or empty replies, trimmed or split content and templates that drop earlier
//     reasoning are all handled. A template that never loops over the message objects falls back to the content
//     characters alone.
using LoraSharp.Tokenizers.Chat.Jinja;

namespace LoraSharp.Tokenizers.Chat;

/// <summary>A Hugging Face chat template (Jinja) with the model's BOS/EOS texts.</summary>
public sealed class JinjaChatTemplate
{
    /// <summary>Parses <paramref name="source"/>; throws <see cref="JinjaException"/> (line, column) when it is not valid.</summary>
    public JinjaChatTemplate(string source, string? bosToken, string? eosToken, JinjaRenderOptions? options = null)
    {
        Template = JinjaTemplate.Parse(source);
        BosToken = bosToken;
        EosToken = eosToken;
        Options = options ?? new JinjaRenderOptions();
    }

    /// <summary>The parsed template.</summary>
    public JinjaTemplate Template { get; }

    /// <summary>The text of the model's BOS token (bos_token), or null.</summary>
    public string? BosToken { get; }

    /// <summary>The text of the model's EOS token (eos_token), or null.</summary>
    public string? EosToken { get; }

    /// <summary>Render limits and the strftime_now clock.</summary>
    public JinjaRenderOptions Options { get; }

    /// <summary>The template of a Hugging Face folder's tokenizer_config.json (see <see cref="ModelChatTemplate.FromTokenizerConfig"/>), parsed; null when the model ships none.</summary>
    public static JinjaChatTemplate? FromTokenizerConfig(string tokenizerConfigPath, JinjaRenderOptions? options = null) =>
        ModelChatTemplate.FromTokenizerConfig(tokenizerConfigPath)?.Parse(options);

    /// <summary>Renders a conversation (messages as dictionaries or JSON objects with role, content and any other
    /// fields the template reads: tool_calls, reasoning_content, ...).</summary>
    public string Render(IReadOnlyList<object?> messages, bool addGenerationPrompt = false, object? tools = null, IReadOnlyDictionary<string, object?>? extra = null)
    {
        var msgs = ConvertMessages(messages);
        return Template.RenderTracked(Variables(msgs, addGenerationPrompt, tools, extra), null, Options).Text;
    }

    /// <summary>Renders role/content messages.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, IReadOnlyDictionary<string, object?>? extra = null) =>
        Render(AsObjects(messages), addGenerationPrompt, null, extra);

    /// <summary>Renders a training conversation (no generation prompt) and the character spans of the assistant's
    /// part (see the file header for the rule).</summary>
    public RenderedChat RenderForTraining(IReadOnlyList<object?> messages, object? tools = null, IReadOnlyDictionary<string, object?>? extra = null)
    {
        var msgs = ConvertMessages(messages);
        var ids = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < msgs.Count; i++)
        {
            var m = msgs[i];
            ids[m] = i + 1;
            if (IsAssistant(m) && m.TryGetValue("content", out var c) && c is string s)
                m["content"] = TStr.Make(s, Enumerable.Repeat(i + 1, s.Length).ToArray());
        }
        var full = Template.RenderTracked(Variables(msgs, false, tools, extra), ids, Options);
        var spans = new List<TextSpan>();
        if (Template.HasGenerationBlocks)
        {
            foreach (var (s, e) in full.Generation) if (e > s) spans.Add(new TextSpan(s, e));
            return new RenderedChat(full.Text, spans);
        }
        for (int i = 0; i < msgs.Count; i++)
        {
            if (!IsAssistant(msgs[i])) continue;
            int id = i + 1;
            int rs = -1, re = -1, ts = -1, te = -1;
            for (int k = 0; k < full.Text.Length; k++)
            {
                if (full.Owner[k] == id) { if (rs < 0) rs = k; re = k + 1; }
                if (full.Origin[k] == id) { if (ts < 0) ts = k; te = k + 1; }
            }
            if (rs < 0 && ts < 0) continue;
            string prompt = GenerationPrompt(msgs, i, tools, extra, ids);
            int start;
            if (rs >= 0 && prompt.Length > 0 && string.CompareOrdinal(full.Text, rs, prompt, 0, prompt.Length) == 0 && rs + prompt.Length <= re)
                start = rs + prompt.Length;
            else if (rs >= 0 && prompt.Length > 0 && LastIndexIn(full.Text, prompt, rs, ts >= 0 ? ts : re) is int p and >= 0)
                start = p + prompt.Length;
            else start = ts >= 0 ? ts : rs;
            int end = rs >= 0 ? Math.Max(re, te) : te;
            while (end > start && char.IsWhiteSpace(full.Text[end - 1])) end--;
            if (end > start) spans.Add(new TextSpan(start, end));
        }
        return new RenderedChat(full.Text, spans);
    }

    /// <summary>Renders role/content messages for training.</summary>
    public RenderedChat RenderForTraining(IReadOnlyList<ChatMessage> messages, IReadOnlyDictionary<string, object?>? extra = null) =>
        RenderForTraining(AsObjects(messages), null, extra);

    private static int LastIndexIn(string text, string value, int from, int to)
    {
        if (to - from < value.Length) return -1;
        return text.LastIndexOf(value, to - 1, to - from, StringComparison.Ordinal) is int k && k >= 0 && k + value.Length <= to ? k : -1;
    }

    // The text add_generation_prompt=true appends to messages[..i]: the output past the point where the renders
    // with and without it part, and past the last character a message's loop iteration wrote (a template that
    // writes EOS instead of the prompt must not cut the prompt's first characters). Empty when that render fails.
    private string GenerationPrompt(List<Dictionary<string, object?>> msgs, int i, object? tools, IReadOnlyDictionary<string, object?>? extra, Dictionary<object, int> ids)
    {
        var prefix = msgs.Take(i).ToList();
        try
        {
            var with = Template.RenderTracked(Variables(prefix, true, tools, extra), ids, Options);
            var without = Template.RenderTracked(Variables(prefix, false, tools, extra), ids, Options).Text;
            int lcp = 0;
            while (lcp < with.Text.Length && lcp < without.Length && with.Text[lcp] == without[lcp]) lcp++;
            int lastOwned = -1;
            for (int k = with.Owner.Length - 1; k >= 0; k--) if (with.Owner[k] != 0) { lastOwned = k; break; }
            int cut = lastOwned >= 0 && lastOwned + 1 < with.Text.Length ? Math.Min(lcp, lastOwned + 1) : lcp;
            return with.Text[cut..];
        }
        catch (JinjaException)
        {
            return "";
        }
    }

    private static bool IsAssistant(Dictionary<string, object?> m) => m.TryGetValue("role", out var r) && r is string s && s == "assistant";

    private Dictionary<string, object?> Variables(List<Dictionary<string, object?>> msgs, bool gen, object? tools, IReadOnlyDictionary<string, object?>? extra)
    {
        var v = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = msgs.Cast<object?>().ToList(),
            ["tools"] = JinjaTemplate.Convert(tools),
            ["documents"] = null,
            ["add_generation_prompt"] = gen,
        };
        if (BosToken != null) v["bos_token"] = BosToken;
        if (EosToken != null) v["eos_token"] = EosToken;
        if (extra != null) foreach (var (k, x) in extra) v[k] = JinjaTemplate.Convert(x);
        return v;
    }

    private static List<Dictionary<string, object?>> ConvertMessages(IReadOnlyList<object?> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var r = new List<Dictionary<string, object?>>(messages.Count);
        for (int i = 0; i < messages.Count; i++)
        {
            if (JinjaTemplate.Convert(messages[i]) is not Dictionary<string, object?> d)
                throw new ArgumentException($"messages[{i}] is not an object with \"role\" and \"content\".", nameof(messages));
            if (!d.TryGetValue("role", out var role) || role is not string)
                throw new ArgumentException($"messages[{i}] has no string \"role\".", nameof(messages));
            r.Add(d);
        }
        return r;
    }

    private static List<object?> AsObjects(IReadOnlyList<ChatMessage> messages) =>
        messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList();

    /// <summary>Encodes a training rendering: ids, and a mask of the tokens inside the assistant spans.</summary>
    public ChatEncoding EncodeForTraining(Tokenizer tokenizer, IReadOnlyList<object?> messages, object? tools = null, IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var chat = RenderForTraining(messages, tools, extra);
        bool writesBos = BosToken != null && chat.Text.StartsWith(BosToken, StringComparison.Ordinal);
        return ChatTemplate.EncodeRendered(tokenizer, chat, writesBos);
    }
}
