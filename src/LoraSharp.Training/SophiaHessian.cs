// Sophia-G's Gauss-Newton-Bartlett Hessian estimate inside the training loop (Liu et al. 2023, Algorithm 2): every
// hessian_update_interval optimizer steps, after the step (the authors' train_sophiag.py: iter % k == k − 1), labels ŷ
// are sampled from the model's own softmax on the inputs of the step's first micro-batch, one forward + backward of
// the mean cross-entropy on ŷ over its B counted tokens gives ĝ, and Sophia folds B·ĝ⊙ĝ into its Hessian EMA.
// One micro-batch, not the whole accumulated batch: the paper estimates the Hessian on a smaller batch too, and it
// keeps the extra cost at about (1 forward + 1 forward/backward of one micro-batch) / k.
// Not here: the update formulas (Core's Sophia) and preference objectives (dpo/orpo are not cross-entropy; refused
// by TrainingSettings.Validate).
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;

namespace LoraSharp.Training;

/// <summary>The GNB Hessian pass of Sophia-G.</summary>
public static class SophiaHessian
{
    /// <summary>
    /// Samples labels for <paramref name="batch"/>, runs forward + backward of their mean cross-entropy, updates
    /// <paramref name="sophia"/>'s Hessian EMA from the gradients and zeroes them again. Returns B, the tokens used.
    /// </summary>
    public static int Update(LlamaModel model, Sophia sophia, IReadOnlyList<Parameter> parameters, Batch batch, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sophia);
        var sampled = model.WithSampledLabels(batch, seed);
        int tokens = sampled.TargetCount;
        if (tokens == 0) return 0;
        Optimizer.ZeroGrad(parameters);
        model.ForwardBackward(sampled, 1f / tokens, seed ^ 0x5A5A5A5A5A5A5A5AUL, out _);
        sophia.UpdateHessian(parameters, tokens);
        Optimizer.ZeroGrad(parameters);
        return tokens;
    }
}
