// An Ollama Modelfile for a merged GGUF (FROM) or a base GGUF plus a GGUF LoRA (FROM + ADAPTER): the chat template
// translated into Ollama's Go text/template syntax for the families recognised here, and PARAMETER stop for their
// end-of-turn markers. Not here: reading the model (the caller passes the Jinja template text) or running Ollama.
using System.Text;

namespace LoraSharp.App.Ollama;

/// <summary>A chat family Ollama can template: its Go template and end-of-turn stop strings.</summary>
public sealed record OllamaChatFamily(string Name, string Template, IReadOnlyList<string> Stops);

/// <summary>Writes Ollama Modelfiles.</summary>
public static class OllamaModelfile
{
    /// <summary>Llama 3.x headers.</summary>
    public static readonly OllamaChatFamily Llama3 = new("llama3",
        "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}" +
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]);

    /// <summary>ChatML (Qwen2/2.5/3, SmolLM).</summary>
    public static readonly OllamaChatFamily ChatML = new("chatml",
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}" +
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}" +
        "<|im_start|>assistant\n",
        ["<|im_end|>", "<|im_start|>"]);

    /// <summary>Mistral [INST] (the system prompt goes before the first user message).</summary>
    public static readonly OllamaChatFamily Mistral = new("mistral",
        "{{- range $i, $_ := .Messages }}{{- if eq .Role \"user\" }}[INST] {{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]" +
        "{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>{{- end }}{{- end }}",
        ["[INST]", "[/INST]"]);

    /// <summary>Gemma turns (the assistant's role is "model"; no system role, so the system prompt is a user turn).</summary>
    public static readonly OllamaChatFamily Gemma = new("gemma",
        "{{- if .System }}<start_of_turn>user\n{{ .System }}<end_of_turn>\n{{ end }}" +
        "{{- range .Messages }}<start_of_turn>{{ if eq .Role \"assistant\" }}model{{ else }}{{ .Role }}{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}" +
        "<start_of_turn>model\n",
        ["<end_of_turn>", "<start_of_turn>"]);

    /// <summary>Phi-3/3.5/4 role tags.</summary>
    public static readonly OllamaChatFamily Phi3 = new("phi3",
        "{{- if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}" +
        "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}" +
        "<|assistant|>\n",
        ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]);

    /// <summary>The families, for help texts and tests.</summary>
    public static IReadOnlyList<OllamaChatFamily> Families { get; } = [Llama3, ChatML, Mistral, Gemma, Phi3];

    /// <summary>The family of a Jinja chat template (tokenizer.chat_template / tokenizer_config.json), by its markers; null when none.</summary>
    public static OllamaChatFamily? Detect(string? jinjaTemplate)
    {
        if (string.IsNullOrEmpty(jinjaTemplate)) return null;
        bool Has(string s) => jinjaTemplate.Contains(s, StringComparison.Ordinal);
        if (Has("<|start_header_id|>") && Has("<|eot_id|>")) return Llama3;
        if (Has("<|im_start|>")) return ChatML;
        if (Has("<start_of_turn>")) return Gemma;
        if (Has("<|end|>") && (Has("<|user|>") || Has("<|assistant|>"))) return Phi3;
        if (Has("[INST]") && !Has("<<SYS>>")) return Mistral;
        return null;
    }

    /// <summary>
    /// The Modelfile text: FROM <paramref name="from"/> (a GGUF path, relative to the Modelfile's folder when it is
    /// beside it), ADAPTER when <paramref name="adapter"/> is given, then TEMPLATE and PARAMETER stop when the chat
    /// template is of a known family (else a comment saying none was translated, and Ollama's default applies).
    /// </summary>
    public static string Render(string from, string? adapter, string? jinjaTemplate)
    {
        ArgumentException.ThrowIfNullOrEmpty(from);
        var sb = new StringBuilder();
        sb.Append("# Ollama Modelfile written by LoraSharp: ollama create NAME -f Modelfile\n");
        sb.Append("FROM ").Append(from).Append('\n');
        if (adapter != null) sb.Append("ADAPTER ").Append(adapter).Append('\n');
        var family = Detect(jinjaTemplate);
        if (family == null)
        {
            sb.Append(jinjaTemplate == null
                ? "# The model has no chat template: no TEMPLATE (Ollama passes the prompt as it is).\n"
                : "# The model's chat template is not one LoraSharp translates (Llama 3, ChatML, Mistral, Gemma, Phi-3): no TEMPLATE; write one by hand.\n");
            return sb.ToString();
        }
        sb.Append("# chat template: ").Append(family.Name).Append('\n');
        sb.Append("TEMPLATE \"\"\"").Append(family.Template).Append("\"\"\"\n");
        foreach (var stop in family.Stops) sb.Append("PARAMETER stop \"").Append(stop).Append("\"\n");
        return sb.ToString();
    }

    /// <summary>
    /// The Jinja chat template of a model: GGUF metadata <c>tokenizer.chat_template</c>, or <c>chat_template</c> of a
    /// Hugging Face folder's tokenizer_config.json (a string, or the "default" entry of a list); null when it has none.
    /// </summary>
    public static string? ReadChatTemplate(string modelPath)
    {
        if (File.Exists(modelPath))
        {
            using var gguf = Formats.Gguf.GgufFile.Open(modelPath);
            return gguf.MetadataByKey.TryGetValue("tokenizer.chat_template", out var v) ? v.AsString() : null;
        }
        string config = Path.Combine(modelPath, "tokenizer_config.json");
        if (!File.Exists(config)) return null;
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(config));
        if (!doc.RootElement.TryGetProperty("chat_template", out var t)) return null;
        if (t.ValueKind == System.Text.Json.JsonValueKind.String) return t.GetString();
        if (t.ValueKind == System.Text.Json.JsonValueKind.Array)
            foreach (var e in t.EnumerateArray())
                if (e.TryGetProperty("name", out var n) && n.GetString() == "default" && e.TryGetProperty("template", out var tt)) return tt.GetString();
        return null;
    }

    /// <summary>Writes <c>Modelfile</c> in <paramref name="folder"/> (temp name, then rename); returns its path.</summary>
    public static string Write(string folder, string from, string? adapter, string? jinjaTemplate)
    {
        string path = Path.Combine(folder, "Modelfile");
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, Render(from, adapter, jinjaTemplate));
        File.Move(tmp, path, overwrite: true);
        return path;
    }
}
