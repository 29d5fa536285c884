// The generate use case: load a model (+ adapters), encode the prompt (raw or through the chat template), and
// stream the generated text to a callback.
using LoraSharp.Models.Generation;

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
}

/// <summary>Runs a generation.</summary>
public static class GenerateJob
{
    /// <summary>Generates, streaming text pieces to <paramref name="onText"/>.</summary>
    public static GenerationResult Run(GenerateRequest request, Action<string>? onText = null, CancellationToken cancel = default)
    {
        using var session = ModelSession.Open(request.Model, request.Adapters, request.BaseDType);
        return Run(session, request.Prompt, request.Options, onText, cancel);
    }

    /// <summary>Generates with an already loaded session.</summary>
    public static GenerationResult Run(ModelSession session, string prompt, GenerationOptions options, Action<string>? onText = null, CancellationToken cancel = default)
        => new TextGenerator(session.Model, session.Tokenizer).Generate(prompt, options, onText, cancel);
}
