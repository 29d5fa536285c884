// The generate use case: load a model (+ adapters), encode the prompt (raw or through the chat template), and
// stream the generated text to a callback.
using LoraSharp.Models.Generation;
using LoraSharp.Tokenizers.Chat;

namespace LoraSharp.App;

/// <summary>Settings of one generation.</summary>
public sealed record GenerateRequest
{
    /// <summary>Model folder or GGUF file.</summary>
    public required string Model { get; init; }
    /// <summary>Adapters to apply, each with a scale.</summary>
    public IReadOnlyList<AdapterSpec> Adapters { get; init; } = [];
    /// <summary>The prompt text.</summary>
    public required string Prompt { get; init; }
    /// <summary>Generation options (tokens, sampling, stops).</summary>
    public GenerationOptions Options { get; init; } = new();
    /// <summary>Base weight dtype (null = f32).</summary>
    public string? BaseDType { get; init; }
    /// <summary>With an nf4 base: double-quantize the block scales.</summary>
    public bool DoubleQuant { get; init; }
    /// <summary>Chat mode: the prompt is a user message rendered with the chat template.</summary>
    public bool Chat { get; init; }
    /// <summary>Chat template name (chatml, llama2, llama3, mistral, alpaca, zephyr, phi3); null = detect from tokenizer_config.json, else chatml.</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>Optional system message in chat mode.</summary>
    public string? System { get; init; }
}

/// <summary>Runs a generation.</summary>
public static class GenerateJob
{
    /// <summary>Generates, streaming text pieces to <paramref name="onText"/>.</summary>
    public static GenerationResult Run(GenerateRequest request, Action<string>? onText = null, CancellationToken cancel = default)
    {
        using var session = ModelSession.Open(request.Model, request.Adapters, request.BaseDType, doubleQuant: request.DoubleQuant);
        return request.Chat
            ? RunChat(session, request.Prompt, request.System, request.ChatTemplate, request.Options, onText, cancel)
            : Run(session, request.Prompt, request.Options, onText, cancel);
    }

    /// <summary>
    /// Chat mode with an already loaded session: <paramref name="prompt"/> is one user message (after an optional
    /// <paramref name="system"/> message) rendered with the template <paramref name="templateName"/> (see
    /// <see cref="ChatTemplateFor"/>), ending with the assistant's turn.
    /// </summary>
    public static GenerationResult RunChat(ModelSession session, string prompt, string? system, string? templateName, GenerationOptions options,
        Action<string>? onText = null, CancellationToken cancel = default)
    {
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(system)) messages.Add(new ChatMessage("system", system));
        messages.Add(new ChatMessage("user", prompt));
        int[] ids;
        if (string.IsNullOrEmpty(templateName) && session.ChatTemplate is { } own)
        {
            // The model's own Jinja template, rendered as transformers' apply_chat_template(add_generation_prompt=True).
            var jinja = own.Parse();
            string text = jinja.Render(messages, addGenerationPrompt: true);
            bool writesBos = jinja.BosToken != null && text.StartsWith(jinja.BosToken, StringComparison.Ordinal);
            ids = ChatTemplate.EncodeRendered(session.Tokenizer, new RenderedChat(text, []), writesBos).Ids;
        }
        else ids = ChatTemplateFor(session, templateName).Encode(session.Tokenizer, messages, addGenerationPrompt: true).Ids;
        return new TextGenerator(session.Model, session.Tokenizer).Generate(ids, options, onText, cancel);
    }

    /// <summary>Throws a <see cref="Tokenizers.TokenizerFormatException"/> naming the known templates when <paramref name="name"/> is none of them.</summary>
    public static void CheckChatTemplateName(string name) => Tokenizers.Chat.ChatTemplate.FromName(name);

    /// <summary>The named template, or the built-in one tokenizer_config.json's chat_template resembles, or ChatML
    /// (RunChat renders the model's own Jinja template itself when no name is given).</summary>
    public static ChatTemplate ChatTemplateFor(ModelSession session, string? name)
    {
        if (!string.IsNullOrEmpty(name)) return Tokenizers.Chat.ChatTemplate.FromName(name);
        string config = Path.Combine(session.Source, "tokenizer_config.json");
        return (File.Exists(config) ? Tokenizers.Chat.ChatTemplate.DetectFromTokenizerConfig(config) : null) ?? Tokenizers.Chat.ChatTemplate.FromName("chatml");
    }

    /// <summary>Generates with an already loaded session.</summary>
    public static GenerationResult Run(ModelSession session, string prompt, GenerationOptions options, Action<string>? onText = null, CancellationToken cancel = default)
        => new TextGenerator(session.Model, session.Tokenizer).Generate(prompt, options, onText, cancel);
}
