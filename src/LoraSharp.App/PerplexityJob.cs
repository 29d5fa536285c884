// The perplexity use case: tokenize a text file and evaluate it with a sliding window.
using LoraSharp.Models.Evaluation;

namespace LoraSharp.App;

/// <summary>Settings of a perplexity run.</summary>
public sealed record PerplexityRequest
{
    /// <summary>Model folder or GGUF file.</summary>
    public required string Model { get; init; }
    /// <summary>Adapters to apply.</summary>
    public IReadOnlyList<AdapterSpec> Adapters { get; init; } = [];
    /// <summary>UTF-8 text file to score.</summary>
    public required string File { get; init; }
    /// <summary>Window length in tokens (0 = the model's context).</summary>
    public int MaxLength { get; init; }
    /// <summary>Window advance in tokens (0 = half the window, like text-generation-webui's default stride 512 for 1024).</summary>
    public int Stride { get; init; }
    /// <summary>Score at most this many tokens of the file (0 = all).</summary>
    public int MaxTokens { get; init; }
    /// <summary>Base weight dtype.</summary>
    public string? BaseDType { get; init; }
    /// <summary>With an nf4 base: double-quantize the block scales.</summary>
    public bool DoubleQuant { get; init; }
}

/// <summary>Runs a perplexity evaluation.</summary>
public static class PerplexityJob
{
    /// <summary>Evaluates and returns the result; <paramref name="progress"/> gets (windows done, total).</summary>
    public static PerplexityResult Run(PerplexityRequest request, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        CheckFile(request);
        using var session = ModelSession.Open(request.Model, request.Adapters, request.BaseDType, doubleQuant: request.DoubleQuant);
        return Run(session, request, progress, cancel);
    }

    /// <summary>Evaluates with an already loaded session (its adapters as attached; the request's model, adapters and dtype are not used).</summary>
    public static PerplexityResult Run(ModelSession session, PerplexityRequest request, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        CheckFile(request);
        string text = System.IO.File.ReadAllText(request.File);
        var ids = session.Tokenizer.EncodeToIds(text, addSpecialTokens: true);
        if (request.MaxTokens > 0 && ids.Length > request.MaxTokens) ids = ids[..request.MaxTokens];
        int maxLength = request.MaxLength > 0 ? request.MaxLength : session.Model.Config.MaxPositionEmbeddings;
        int stride = request.Stride > 0 ? request.Stride : Math.Max(1, maxLength / 2);
        return Perplexity.Evaluate(session.Model, ids, maxLength, stride, progress, cancel);
    }

    /// <summary>Throws <see cref="FileNotFoundException"/> when the text file is missing (before a model is loaded for nothing).</summary>
    public static void CheckFile(PerplexityRequest request)
    {
        if (!System.IO.File.Exists(request.File)) throw new FileNotFoundException($"Text file '{request.File}' does not exist.", request.File);
    }
}
