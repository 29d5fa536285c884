// PEFT's init_lora_weights: true (Kaiming-uniform A, zero B), false (random A and B; for tests), or the name of
// an init method ("gaussian", "pissa", "olora", "loftq", ...). This type only carries the value.
namespace LoraSharp.Formats.Peft;

/// <summary>init_lora_weights: a boolean or a method name.</summary>
public readonly record struct PeftInitLoraWeights
{
    private PeftInitLoraWeights(bool? flag, string? method)
    {
        Flag = flag;
        Method = method;
    }

    /// <summary>The boolean value, or null when a method name is given.</summary>
    public bool? Flag { get; }

    /// <summary>The method name ("gaussian", "pissa", ...), or null when a boolean is given.</summary>
    public string? Method { get; }

    /// <summary>A boolean value.</summary>
    public static PeftInitLoraWeights FromBool(bool value) => new(value, null);

    /// <summary>A method name.</summary>
    public static PeftInitLoraWeights FromMethod(string method) => new(null, method ?? throw new ArgumentNullException(nameof(method)));

    /// <summary>A boolean value.</summary>
    public static implicit operator PeftInitLoraWeights(bool value) => FromBool(value);

    /// <summary>A method name.</summary>
    public static implicit operator PeftInitLoraWeights(string method) => FromMethod(method);

    /// <inheritdoc />
    public override string ToString() => Method ?? (Flag == false ? "false" : "true");
}
