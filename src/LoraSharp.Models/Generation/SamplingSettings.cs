// Sampling knobs as Hugging Face generate() and text-generation-webui name them.
namespace LoraSharp.Models.Generation;

/// <summary>How the next token is chosen from the logits.</summary>
public sealed record SamplingSettings
{
    /// <summary>0 = greedy (argmax); otherwise logits are divided by it.</summary>
    public float Temperature { get; init; } = 0.7f;

    /// <summary>Keep the K most likely tokens (0 = off).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set whose probability reaches P (1 = off).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens whose probability is below MinP × the top probability (0 = off).</summary>
    public float MinP { get; init; }

    /// <summary>Penalty on tokens already present (1 = off): positive logits divided, negative multiplied.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Random seed for reproducible sampling.</summary>
    public int Seed { get; init; } = 1234;

    /// <summary>Greedy decoding.</summary>
    public static SamplingSettings Greedy { get; } = new() { Temperature = 0f };

    /// <summary>Throws with the setting's name if a value is out of range.</summary>
    public void Validate()
    {
        if (Temperature < 0 || float.IsNaN(Temperature)) throw new Core.UserErrorException($"temperature must be >= 0 (is {Temperature}).");
        if (TopK < 0) throw new Core.UserErrorException($"top_k must be >= 0 (is {TopK}).");
        if (TopP is <= 0 or > 1) throw new Core.UserErrorException($"top_p must be in (0, 1] (is {TopP}).");
        if (MinP is < 0 or >= 1) throw new Core.UserErrorException($"min_p must be in [0, 1) (is {MinP}).");
        if (RepetitionPenalty <= 0) throw new Core.UserErrorException($"repetition_penalty must be > 0 (is {RepetitionPenalty}).");
    }
}
