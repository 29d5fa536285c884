// Use case "extract a LoRA from a fine-tuned model and its base": truncated SVD of each weight difference at a fixed
// rank or a target energy share, written as a PEFT folder, with the energy kept per module and overall.
// Not here: option parsing or presentation.
using LoraSharp.App.Progress;
using LoraSharp.Training.Adapters;

namespace LoraSharp.App;

/// <summary>Options of <see cref="ExtractJob"/>.</summary>
public sealed record ExtractJobOptions
{
    /// <summary>The base model (HF folder or GGUF).</summary>
    public required string BasePath { get; init; }

    /// <summary>The fine-tuned model.</summary>
    public required string TunedPath { get; init; }

    /// <summary>Fixed rank (exclusive with Energy).</summary>
    public int? Rank { get; init; }

    /// <summary>Target energy share in (0, 1] (exclusive with Rank).</summary>
    public double? Energy { get; init; }

    /// <summary>Cap on ranks chosen by Energy.</summary>
    public int MaxRank { get; init; } = 128;

    /// <summary>Output PEFT folder.</summary>
    public required string OutPath { get; init; }

    /// <summary>Replace an existing output.</summary>
    public bool Overwrite { get; init; }
}

/// <summary>Extracts LoRA adapters.</summary>
public static class ExtractJob
{
    /// <summary>Runs the extraction and writes the folder; returns what was kept.</summary>
    public static ExtractReport Run(ExtractJobOptions options, IProgressSink? progress = null)
    {
        string full = Path.GetFullPath(options.OutPath);
        if (!options.Overwrite && (Directory.Exists(full) || File.Exists(full)))
            throw new IOException($"{full} already exists; choose another name or pass --overwrite to replace it.");
        var (weights, report) = LoraExtractor.Extract(options.BasePath, options.TunedPath,
            new ExtractOptions { Rank = options.Rank, Energy = options.Energy, MaxRank = options.MaxRank }, line => progress?.Log(line));
        weights.SavePeft(full, options.Overwrite, options.BasePath);
        foreach (var note in report.Notes) progress?.Log("note: " + note);
        return report;
    }
}
