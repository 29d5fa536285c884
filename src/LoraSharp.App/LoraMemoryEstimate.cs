// The memory a LoRA fine-tuning run needs, from the trainer's own buffer sizes: frozen base weights (an f32 base
// also keeps every matmul weight a second time in backward panel layout once training starts; stored dtypes are
// decoded tile by tile and keep only their bytes), rank-r adapters on every linear with gradients and AdamW
// moments, the activations kept for backward (LlamaActivations, exact) and one cross-entropy logits chunk.
// Not counted: the runtime itself, tokenized data, and per-thread GEMM scratch (a few MiB).
using LoraSharp.Models.Llama;

namespace LoraSharp.App;

/// <summary>Bytes a LoRA run would need (see <see cref="Compute"/> for the assumptions).</summary>
/// <param name="Rank">Adapter rank assumed.</param>
/// <param name="SequenceLength">Tokens per sequence assumed.</param>
/// <param name="MicroBatch">Sequences per step assumed.</param>
/// <param name="BaseWeightsBytes">Base weights widened to F32, with the backward panels training builds.</param>
/// <param name="StoredWeightsBytes">Base weights as stored (the --base-dtype stored option).</param>
/// <param name="AdapterParameters">LoRA parameters (A and B of every adapted linear).</param>
/// <param name="AdapterBytes">Adapter weights + gradients + AdamW m and v, all F32 (16 bytes per parameter).</param>
/// <param name="ActivationBytes">Activations saved for backward, gradient scratch and the cross-entropy logits chunk.</param>
/// <param name="CheckpointedActivationBytes">The same with activation checkpointing (one layer's activations kept).</param>
public sealed record LoraMemoryEstimate(int Rank, int SequenceLength, int MicroBatch, long BaseWeightsBytes, long StoredWeightsBytes,
    long AdapterParameters, long AdapterBytes, long ActivationBytes, long CheckpointedActivationBytes)
{
    /// <summary>F32 base weights + adapters + activations.</summary>
    public long TotalBytes => BaseWeightsBytes + AdapterBytes + ActivationBytes;

    /// <summary>Stored-dtype base weights + adapters + activations.</summary>
    public long TotalStoredBytes => StoredWeightsBytes + AdapterBytes + ActivationBytes;

    /// <summary>
    /// Estimates for a Llama-family model: adapters of rank <paramref name="rank"/> on q,k,v,o,gate,up,down of every
    /// layer (r*(in+out) parameters each), micro-batches of <paramref name="microBatch"/> sequences of
    /// <paramref name="sequenceLength"/> tokens.
    /// </summary>
    public static LoraMemoryEstimate Compute(Models.LlamaConfig c, long parameters, long storedWeightBytes, int rank = 8, int sequenceLength = 512, int microBatch = 1)
    {
        long C = c.HiddenSize, I = c.IntermediateSize, Q = (long)c.NumAttentionHeads * c.HeadDim, KV = (long)c.NumKeyValueHeads * c.HeadDim;
        long perLayerAdapter = rank * ((C + Q) + (C + KV) * 2 + (Q + C) + (C + I) * 2 + (I + C));
        long adapterParams = perLayerAdapter * c.NumHiddenLayers;
        long matmulWeights = c.NumHiddenLayers * (C * Q + 2 * C * KV + Q * C + 3 * C * I) + (long)c.VocabSize * C;
        int chunkRows = LlamaModel.CrossEntropyChunkRows(c.VocabSize, f32Output: true);
        long logitsChunk = (long)chunkRows * c.VocabSize * 4 + chunkRows * 8L;
        long Activations(bool checkpointing) =>
            LlamaActivations.ByteCount(c, microBatch, sequenceLength, checkpointing, rank) + logitsChunk;
        return new LoraMemoryEstimate(rank, sequenceLength, microBatch, (parameters + matmulWeights) * 4, storedWeightBytes,
            adapterParams, adapterParams * 16, Activations(false), Activations(true));
    }
}
