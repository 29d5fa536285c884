// A rough estimate of the memory a LoRA fine-tuning run needs: frozen base weights, rank-8 adapters on every
// linear with gradients and AdamW moments, and activations kept for backward. Deliberately simple arithmetic
// for planning; the trainer's real numbers depend on its kernels and options.
namespace LoraSharp.App;

/// <summary>Bytes a LoRA run would need (see <see cref="Compute"/> for the assumptions).</summary>
/// <param name="Rank">Adapter rank assumed.</param>
/// <param name="SequenceLength">Tokens per sequence assumed.</param>
/// <param name="MicroBatch">Sequences per step assumed.</param>
/// <param name="BaseWeightsBytes">Base weights widened to F32.</param>
/// <param name="StoredWeightsBytes">Base weights as stored (the --base-dtype stored option).</param>
/// <param name="AdapterParameters">LoRA parameters (A and B of every adapted linear).</param>
/// <param name="AdapterBytes">Adapter weights + gradients + AdamW m and v, all F32 (16 bytes per parameter).</param>
/// <param name="ActivationBytes">Activations saved for backward, plus logits and their gradient.</param>
public sealed record LoraMemoryEstimate(int Rank, int SequenceLength, int MicroBatch, long BaseWeightsBytes, long StoredWeightsBytes,
    long AdapterParameters, long AdapterBytes, long ActivationBytes)
{
    /// <summary>F32 base weights + adapters + activations.</summary>
    public long TotalBytes => BaseWeightsBytes + AdapterBytes + ActivationBytes;

    /// <summary>Stored-dtype base weights + adapters + activations.</summary>
    public long TotalStoredBytes => StoredWeightsBytes + AdapterBytes + ActivationBytes;

    /// <summary>
    /// Estimates for a Llama-family model: adapters of rank <paramref name="rank"/> on q,k,v,o,gate,up,down of every
    /// layer (r*(in+out) parameters each); per layer and token the activations kept are about 8C + Q + 2KV + 4I
    /// floats (norm inputs/outputs, q/k/v, attention output, MLP gate/up/act) plus NH*T attention probabilities;
    /// logits and their gradient add 2V floats per token.
    /// </summary>
    public static LoraMemoryEstimate Compute(Models.LlamaConfig c, long parameters, long storedWeightBytes, int rank = 8, int sequenceLength = 512, int microBatch = 1)
    {
        long C = c.HiddenSize, I = c.IntermediateSize, Q = (long)c.NumAttentionHeads * c.HeadDim, KV = (long)c.NumKeyValueHeads * c.HeadDim;
        long perLayerAdapter = rank * ((C + Q) + (C + KV) * 2 + (Q + C) + (C + I) * 2 + (I + C));
        long adapterParams = perLayerAdapter * c.NumHiddenLayers;
        long tokens = (long)sequenceLength * microBatch;
        long perLayerFloats = tokens * (8 * C + Q + 2 * KV + 4 * I) + (long)microBatch * c.NumAttentionHeads * sequenceLength * sequenceLength;
        long activations = 4 * (perLayerFloats * c.NumHiddenLayers + tokens * 2L * c.VocabSize);
        return new LoraMemoryEstimate(rank, sequenceLength, microBatch, parameters * 4, storedWeightBytes, adapterParams, adapterParams * 16, activations);
    }
}
