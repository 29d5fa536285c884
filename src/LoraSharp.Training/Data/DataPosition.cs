// Where a Batcher is in its data: the epoch and the index of the next micro-batch in that epoch. Saved in
// checkpoints; restoring it (with the same samples, micro-batch size and seed) continues with the same batches.
namespace LoraSharp.Training.Data;

/// <summary>The data cursor: epoch (0-based) and next micro-batch index in it.</summary>
public readonly record struct DataPosition(int Epoch, int Index);
