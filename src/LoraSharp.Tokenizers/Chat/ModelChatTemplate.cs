// The chat template a model ships, as found (not yet parsed): its Jinja source, where it came from (for messages)
// and the BOS/EOS texts the template may write. Parsing is deferred to Parse() so that a model whose template the
// interpreter cannot read still loads for everything that does not need it.
using System.Text.Json;
using LoraSharp.Tokenizers.Chat.Jinja;

namespace LoraSharp.Tokenizers.Chat;

/// <summary>A model's own chat template.</summary>
/// <param name="Source">The Jinja text.</param>
/// <param name="Origin">Where it came from, e.g. "tokenizer_config.json chat_template" or "GGUF tokenizer.chat_template".</param>
/// <param name="BosToken">The bos_token text, or null.</param>
/// <param name="EosToken">The eos_token text, or null.</param>
public sealed record ModelChatTemplate(string Source, string Origin, string? BosToken, string? EosToken)
{
    /// <summary>Parses the template; a syntax error names the origin, the line and column, and the way around it.</summary>
    public JinjaChatTemplate Parse(JinjaRenderOptions? options = null)
    {
        try { return new JinjaChatTemplate(Source, BosToken, EosToken, options); }
        catch (JinjaException e)
        {
            throw new TokenizerFormatException($"the model's chat template ({Origin}) cannot be read: {e.Message}. " +
                "Set chat_template to a template name (chatml, llama3, ...) or a .jinja file to use another one.");
        }
    }

    /// <summary>The template of a Hugging Face folder's tokenizer_config.json: chat_template.jinja beside it wins
    /// (as in transformers), else the "chat_template" field (a string, or the "default" entry of a list). Null
    /// when there is none.</summary>
    public static ModelChatTemplate? FromTokenizerConfig(string tokenizerConfigPath)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(tokenizerConfigPath)) ?? ".";
        string jinjaFile = Path.Combine(dir, "chat_template.jinja");
        JsonDocument? doc = null;
        try
        {
            if (File.Exists(tokenizerConfigPath))
            {
                try { doc = JsonDocument.Parse(File.ReadAllText(tokenizerConfigPath)); }
                catch (JsonException e) { throw new TokenizerFormatException($"{tokenizerConfigPath} is not valid JSON: {e.Message}"); }
            }
            var root = doc?.RootElement ?? default;
            bool obj = doc != null && root.ValueKind == JsonValueKind.Object;
            string? bos = obj ? TokenText(root, "bos_token") : null, eos = obj ? TokenText(root, "eos_token") : null;
            if (File.Exists(jinjaFile)) return new ModelChatTemplate(File.ReadAllText(jinjaFile), jinjaFile, bos, eos);
            if (!obj || !root.TryGetProperty("chat_template", out var t)) return null;
            string? source = null;
            if (t.ValueKind == JsonValueKind.String) source = t.GetString();
            else if (t.ValueKind == JsonValueKind.Array)
                foreach (var e in t.EnumerateArray())
                    if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
                        && n.GetString() == "default" && e.TryGetProperty("template", out var tt) && tt.ValueKind == JsonValueKind.String)
                        source = tt.GetString();
            return string.IsNullOrEmpty(source) ? null : new ModelChatTemplate(source, tokenizerConfigPath + " chat_template", bos, eos);
        }
        finally { doc?.Dispose(); }
    }

    // "bos_token": "<s>" or {"content": "<s>", ...} (an AddedToken) or null.
    private static string? TokenText(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString();
        return null;
    }
}
