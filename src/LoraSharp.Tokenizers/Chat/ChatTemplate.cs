// Chat templates of the common model families, written out in C#: ChatML, Llama-2 [INST], Llama-3 headers, Mistral
// [INST], Alpaca, Zephyr and Phi-3. Each renders messages into text and records the assistant spans. They are the
// templates chosen by name (and ChatML for models that ship none); a model's own Jinja template is rendered exactly
// by JinjaChatTemplate instead. Detect() recognises a Jinja template string of these families by distinctive
// substrings. They do not render tools/function calls or per-model default system prompts.
namespace LoraSharp.Tokenizers.Chat;

/// <summary>A chat template of a known family.</summary>
public abstract class ChatTemplate
{
    /// <summary>Short name: chatml, llama2, llama3, mistral, alpaca, zephyr, phi3.</summary>
    public abstract string Name { get; }

    /// <summary>The names <see cref="FromName"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["chatml", "llama2", "llama3", "mistral", "alpaca", "zephyr", "phi3"];

    /// <summary>The template for a name (case-insensitive; "llama-2", "llama-3", "phi-3" also work).</summary>
    public static ChatTemplate FromName(string name) => (name ?? "").Trim().ToLowerInvariant().Replace("-", "").Replace("_", "") switch
    {
        "chatml" => new ChatMLTemplate(),
        "llama2" => new Llama2Template(),
        "llama3" => new Llama3Template(),
        "mistral" => new MistralTemplate(),
        "alpaca" => new AlpacaTemplate(),
        "zephyr" => new ZephyrTemplate(),
        "phi3" => new Phi3Template(),
        _ => throw new TokenizerFormatException($"Unknown chat template '{name}'. Known: {string.Join(", ", Names)}."),
    };

    /// <summary>
    /// Recognises a Jinja chat template (tokenizer_config.json <c>chat_template</c>) of a known family by its distinctive
    /// substrings; null when it is none of them.
    /// </summary>
    public static ChatTemplate? Detect(string? jinjaTemplate)
    {
        if (string.IsNullOrEmpty(jinjaTemplate)) return null;
        bool Has(string s) => jinjaTemplate.Contains(s, StringComparison.Ordinal);
        if (Has("<|im_start|>")) return new ChatMLTemplate();
        if (Has("<|start_header_id|>")) return new Llama3Template();
        if (Has("[INST]")) return Has("<<SYS>>") ? new Llama2Template() : new MistralTemplate();
        if (Has("<|end|>") && (Has("<|user|>") || Has("<|assistant|>"))) return new Phi3Template();
        if (Has("<|user|>") || Has("<|assistant|>")) return new ZephyrTemplate();
        if (Has("### Instruction") && Has("### Response")) return new AlpacaTemplate();
        return null;
    }

    /// <summary>Reads <c>chat_template</c> from a tokenizer_config.json and detects it; null when absent or unknown.</summary>
    public static ChatTemplate? DetectFromTokenizerConfig(string tokenizerConfigPath)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(tokenizerConfigPath));
        if (!doc.RootElement.TryGetProperty("chat_template", out var t)) return null;
        if (t.ValueKind == System.Text.Json.JsonValueKind.String) return Detect(t.GetString());
        // Newer configs hold a list of {name, template}; take "default".
        if (t.ValueKind == System.Text.Json.JsonValueKind.Array)
            foreach (var e in t.EnumerateArray())
                if (e.TryGetProperty("name", out var n) && n.GetString() == "default" && e.TryGetProperty("template", out var tt))
                    return Detect(tt.GetString());
        return null;
    }

    /// <summary>
    /// Renders messages to text. Assistant spans cover each assistant reply plus the marker that ends it.
    /// </summary>
    /// <param name="messages">The conversation (an optional first system message, then user/assistant turns).</param>
    /// <param name="addGenerationPrompt">Append the header that starts an assistant reply (for generation).</param>
    /// <param name="bosToken">The model's BOS text (e.g. <c>&lt;s&gt;</c>); templates that start with BOS write it.</param>
    /// <param name="eosToken">The model's EOS text (e.g. <c>&lt;/s&gt;</c>); templates that end replies with EOS write it.</param>
    public RenderedChat Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, string bosToken = "<s>", string eosToken = "</s>")
    {
        ArgumentNullException.ThrowIfNull(messages);
        for (int i = 0; i < messages.Count; i++)
            if (messages[i].Role is not ("system" or "user" or "assistant"))
                throw new TokenizerFormatException($"messages[{i}].Role is '{messages[i].Role}'; expected system, user or assistant.");
        var w = new Writer();
        RenderCore(messages, addGenerationPrompt, bosToken, eosToken, w);
        return new RenderedChat(w.Text.ToString(), w.Spans);
    }

    /// <summary>Renders and encodes; tokens overlapping an assistant span are marked in the mask.</summary>
    public ChatEncoding Encode(Tokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        string bos = tokenizer.IdToToken(tokenizer.BosTokenId) ?? "<s>";
        string eos = tokenizer.IdToToken(tokenizer.EosTokenId) ?? "</s>";
        var chat = Render(messages, addGenerationPrompt, bos, eos);
        return EncodeRendered(tokenizer, chat, WritesBos);
    }

    /// <summary>Encodes a rendered chat (special tokens parsed; BOS added only when the template does not write it).</summary>
    public static ChatEncoding EncodeRendered(Tokenizer tokenizer, RenderedChat chat, bool templateWritesBos)
    {
        var tokens = tokenizer.EncodeToTokens(chat.Text, addSpecialTokens: !templateWritesBos, parseSpecialTokens: true);
        var ids = new int[tokens.Count];
        var mask = new bool[tokens.Count];
        var spans = new List<TextSpan>();
        foreach (var s in chat.AssistantSpans)
        {
            int first = -1, last = -1;
            for (int i = 0; i < tokens.Count; i++)
            {
                var t = tokens[i];
                bool inside = t.Length > 0 ? t.Index < s.End && t.End > s.Start : t.Index >= s.Start && t.Index < s.End;
                if (!inside) continue;
                mask[i] = true;
                if (first < 0) first = i;
                last = i;
            }
            if (first >= 0) spans.Add(new TextSpan(first, last + 1));
        }
        for (int i = 0; i < ids.Length; i++) ids[i] = tokens[i].Id;
        return new ChatEncoding(ids, mask, spans);
    }

    /// <summary>Whether the rendered text starts with the BOS token itself (then do not add another).</summary>
    public abstract bool WritesBos { get; }

    private protected abstract void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w);

    private protected sealed class Writer
    {
        public readonly System.Text.StringBuilder Text = new();
        public readonly List<TextSpan> Spans = [];
        public Writer Put(string s) { Text.Append(s); return this; }
        public Writer Assistant(string s)
        {
            int start = Text.Length;
            Text.Append(s);
            Spans.Add(new TextSpan(start, Text.Length));
            return this;
        }
    }

    private protected static (string? System, int First) SplitSystem(IReadOnlyList<ChatMessage> m) =>
        m.Count > 0 && m[0].Role == "system" ? (m[0].Content, 1) : (null, 0);
}
