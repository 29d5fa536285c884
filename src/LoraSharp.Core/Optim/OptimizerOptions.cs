// Optimizer hyperparameters as the training configuration carries them (Hugging Face TrainingArguments names in
// PascalCase: weight_decay, adam_beta1/2, adam_epsilon, plus SGD and Adafactor options). Null means "the chosen
// optimizer's default", since defaults differ (Lion β2 0.99 vs Adam 0.999; Adafactor has no β1 unless given).
namespace LoraSharp.Core.Optim;

/// <summary>Options for <see cref="OptimizerFactory.Create"/>.</summary>
public sealed record OptimizerOptions
{
    /// <summary>Weight decay (decoupled for adamw, lion, adafactor; L2 on the gradient for adam and sgd). Default 0 (TrainingArguments).</summary>
    public double WeightDecay { get; init; }

    /// <summary>β1 (adam_beta1); null: 0.9 for adam/adamw/lion, 0.965 for sophia, none for adafactor.</summary>
    public double? Beta1 { get; init; }

    /// <summary>β2 (adam_beta2); null: 0.999 for adam/adamw, 0.99 for lion and sophia (its Hessian EMA). Unused by sgd and adafactor.</summary>
    public double? Beta2 { get; init; }

    /// <summary>eps (adam_epsilon); null: 1e-8 for adam/adamw, 1e-15 for sophia (its smallest denominator).</summary>
    public double? Epsilon { get; init; }

    /// <summary>SGD momentum (default 0).</summary>
    public double Momentum { get; init; }

    /// <summary>SGD dampening (default 0).</summary>
    public double Dampening { get; init; }

    /// <summary>SGD Nesterov momentum (default false; needs Momentum &gt; 0).</summary>
    public bool Nesterov { get; init; }

    /// <summary>Adafactor scale_parameter; null: false, as Hugging Face Trainer's optim="adafactor" sets it.</summary>
    public bool? ScaleParameter { get; init; }

    /// <summary>Adafactor relative_step; null: false (Trainer), so the scheduled learning rate is used.</summary>
    public bool? RelativeStep { get; init; }

    /// <summary>Adafactor warmup_init (default false; needs RelativeStep).</summary>
    public bool WarmupInit { get; init; }

    /// <summary>Adafactor clip_threshold (default 1.0).</summary>
    public double ClipThreshold { get; init; } = 1.0;

    /// <summary>Adafactor decay_rate (default −0.8).</summary>
    public double DecayRate { get; init; } = -0.8;

    /// <summary>Adafactor eps[0] (default 1e-30).</summary>
    public double AdafactorEps1 { get; init; } = 1e-30;

    /// <summary>Adafactor eps[1] (default 1e-3).</summary>
    public double AdafactorEps2 { get; init; } = 1e-3;

    /// <summary>Sophia's γ (the authors' rho, default 0.04).</summary>
    public double SophiaRho { get; init; } = 0.04;
}
