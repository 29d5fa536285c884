// The tensors a Llama-family checkpoint must hold, by HF name, with their shapes ([out, in] for linears),
// derived from a LlamaConfig. Loaders check files against it; it does not read files.
namespace LoraSharp.Models.Loading;

/// <summary>Expected HF tensor names and shapes for a <see cref="LlamaConfig"/>.</summary>
public static class LlamaTensorLayout
{
    /// <summary>Every expected tensor (in a stable order) with its shape, outermost first.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> Expected(LlamaConfig c)
    {
        int C = c.HiddenSize, V = c.VocabSize, I = c.IntermediateSize;
        int Q = c.NumAttentionHeads * c.HeadDim, KV = c.NumKeyValueHeads * c.HeadDim;
        var list = new List<(string, int[])> { (TensorNames.Embedding, [V, C]) };
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            list.Add((TensorNames.Layer(l, "input_layernorm.weight"), [C]));
            if (c.FusedProjections)
            {
                // phi3: self_attn.qkv_proj rows [q | k | v], mlp.gate_up_proj rows [gate | up]; no biases.
                list.Add((TensorNames.Linear(l, "qkv_proj"), [Q + 2 * KV, C]));
                list.Add((TensorNames.Linear(l, "o_proj"), [C, Q]));
                list.Add((TensorNames.Layer(l, "post_attention_layernorm.weight"), [C]));
                list.Add((TensorNames.Linear(l, "gate_up_proj"), [2 * I, C]));
                list.Add((TensorNames.Linear(l, "down_proj"), [C, I]));
                continue;
            }
            list.Add((TensorNames.Linear(l, "q_proj"), [Q, C]));
            list.Add((TensorNames.Linear(l, "k_proj"), [KV, C]));
            list.Add((TensorNames.Linear(l, "v_proj"), [KV, C]));
            list.Add((TensorNames.Linear(l, "o_proj"), [C, Q]));
            if (c.QkvBias)
            {
                list.Add((TensorNames.Linear(l, "q_proj", "bias"), [Q]));
                list.Add((TensorNames.Linear(l, "k_proj", "bias"), [KV]));
                list.Add((TensorNames.Linear(l, "v_proj", "bias"), [KV]));
            }
            if (c.OutputBias) list.Add((TensorNames.Linear(l, "o_proj", "bias"), [C]));
            if (c.QkNorm)
            {
                list.Add((TensorNames.Layer(l, "self_attn.q_norm.weight"), [c.HeadDim]));
                list.Add((TensorNames.Layer(l, "self_attn.k_norm.weight"), [c.HeadDim]));
            }
            list.Add((TensorNames.Layer(l, "post_attention_layernorm.weight"), [C]));
            if (c.SandwichNorms)
            {
                list.Add((TensorNames.Layer(l, "pre_feedforward_layernorm.weight"), [C]));
                list.Add((TensorNames.Layer(l, "post_feedforward_layernorm.weight"), [C]));
            }
            list.Add((TensorNames.Linear(l, "gate_proj"), [I, C]));
            list.Add((TensorNames.Linear(l, "up_proj"), [I, C]));
            list.Add((TensorNames.Linear(l, "down_proj"), [C, I]));
            if (c.MlpBias)
            {
                list.Add((TensorNames.Linear(l, "gate_proj", "bias"), [I]));
                list.Add((TensorNames.Linear(l, "up_proj", "bias"), [I]));
                list.Add((TensorNames.Linear(l, "down_proj", "bias"), [C]));
            }
        }
        list.Add((TensorNames.FinalNorm, [C]));
        if (!c.TieWordEmbeddings) list.Add((TensorNames.LmHead, [V, C]));
        return list;
    }
}
