// A trainable parameter as optimizers see it: a name, an F32 value tensor and an F32 gradient tensor of the same
// shape. It does not own the tensors (the model or adapter that created them disposes them), and it knows nothing
// about what the name means: optimizer state is keyed by the name, so names must be unique within one optimizer.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Optim;

/// <summary>A named F32 value with its F32 gradient of the same shape.</summary>
public sealed class Parameter
{
    /// <summary>Creates a parameter over existing tensors (not owned: dispose them yourself).</summary>
    /// <param name="name">Unique name, e.g. the PEFT key <c>base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight</c>.</param>
    /// <param name="value">The values the optimizer updates in place; F32.</param>
    /// <param name="grad">The gradient of the loss with respect to <paramref name="value"/>; F32, same shape.</param>
    public Parameter(string name, Tensor value, Tensor grad)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("A parameter needs a non-empty name.", nameof(name));
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(grad);
        if (value.DType != DType.F32)
            throw new ArgumentException($"Parameter '{name}': value is {value.DType}; optimizers update F32 tensors only.", nameof(value));
        if (grad.DType != DType.F32)
            throw new ArgumentException($"Parameter '{name}': gradient is {grad.DType}; gradients must be F32.", nameof(grad));
        if (!value.Shape.AsSpan().SequenceEqual(grad.Shape))
            throw new ArgumentException(
                $"Parameter '{name}': value shape {value.ShapeText} and gradient shape {grad.ShapeText} differ; allocate the gradient with the value's shape.");
        if (value.ElementCount > int.MaxValue)
            throw new ArgumentException($"Parameter '{name}' has {value.ElementCount} elements; at most {int.MaxValue} per parameter are supported.");
        Name = name;
        Value = value;
        Grad = grad;
    }

    /// <summary>Unique name; optimizer state is stored under it.</summary>
    public string Name { get; }

    /// <summary>The values (F32).</summary>
    public Tensor Value { get; }

    /// <summary>The gradient (F32, shape of <see cref="Value"/>).</summary>
    public Tensor Grad { get; }

    /// <summary>
    /// This parameter's learning rate as a multiple of the step's (1 by default). LoRA+ sets lora_B's to
    /// loraplus_lr_ratio; the optimizer then steps it as a parameter group with learning rate lr × this.
    /// </summary>
    public double LearningRateScale
    {
        get => _learningRateScale;
        set
        {
            if (!double.IsFinite(value) || value <= 0)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"Parameter '{Name}': the learning-rate scale must be a positive number.");
            _learningRateScale = value;
        }
    }

    private double _learningRateScale = 1;

    /// <summary>Shape, outermost dimension first.</summary>
    public int[] Shape => Value.Shape;

    /// <summary>Number of elements.</summary>
    public int Length => (int)Value.ElementCount;

    /// <inheritdoc />
    public override string ToString() => $"{Name} {Value.ShapeText}";
}
