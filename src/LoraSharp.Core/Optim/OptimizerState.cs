// A snapshot of an optimizer's state for checkpoints: the optimizer's name, its step count and its per-parameter
// buffers as named float arrays ("<parameter name>.<buffer>", buffer names as torch stores them: exp_avg,
// exp_avg_sq, momentum_buffer, exp_avg_sq_row, exp_avg_sq_col; Sophia's hessian). It does not do IO: Training writes it to a file.
namespace LoraSharp.Core.Optim;

/// <summary>Everything an optimizer needs to continue bit-identically after a restart.</summary>
/// <param name="Optimizer">The optimizer's <see cref="Optim.Optimizer.Name"/> (importing into another optimizer is an error).</param>
/// <param name="Step">Optimizer steps taken (the t of the bias corrections).</param>
/// <param name="Buffers">Per-parameter buffers, keyed "<c>parameter name</c>.<c>buffer</c>"; the arrays are copies.</param>
public sealed record OptimizerState(string Optimizer, int Step, IReadOnlyDictionary<string, float[]> Buffers);
