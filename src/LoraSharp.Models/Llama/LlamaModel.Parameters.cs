// The trainable parameters of the model as optimizers see them: LoRA A/B under their PEFT key names, and in
// full fine-tuning every weight under its Hugging Face name.
using LoraSharp.Core.Optim;
using LoraSharp.Models.Lora;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>Every trainable parameter with its gradient, in a fixed order (layers, then PEFT module order).</summary>
    public IReadOnlyList<Parameter> TrainableParameters()
    {
        var list = new List<Parameter>();
        if (GradEmbedding != null) list.Add(new Parameter("model.embed_tokens.weight", Embedding!, GradEmbedding));
        foreach (var layer in Layers)
        {
            string p = $"model.layers.{layer.Index}";
            if (layer.GradInputNorm != null) list.Add(new Parameter($"{p}.input_layernorm.weight", layer.InputNorm, layer.GradInputNorm));
            if (layer.GradPostAttentionNorm != null) list.Add(new Parameter($"{p}.post_attention_layernorm.weight", layer.PostAttentionNorm, layer.GradPostAttentionNorm));
            if (layer.GradQNorm != null) list.Add(new Parameter($"{p}.self_attn.q_norm.weight", layer.QNorm!, layer.GradQNorm));
            if (layer.GradKNorm != null) list.Add(new Parameter($"{p}.self_attn.k_norm.weight", layer.KNorm!, layer.GradKNorm));
            foreach (var linear in layer.Projections)
            {
                if (linear.Weight != null) list.Add(new Parameter(linear.Name + ".weight", linear.Weight, linear.GradWeight!));
                foreach (var a in linear.Adapters)
                {
                    if (!a.Trainable) continue;
                    list.Add(new Parameter(LoraKeys.A(linear.Name), a.A, a.GradA!));
                    list.Add(new Parameter(LoraKeys.B(linear.Name), a.B, a.GradB!));
                    if (a.IsDora) list.Add(new Parameter(LoraKeys.Magnitude(linear.Name), a.Magnitude!, a.GradMagnitude!));
                }
            }
        }
        if (GradFinalNorm != null) list.Add(new Parameter("model.norm.weight", FinalNorm, GradFinalNorm));
        if (GradOutput != null) list.Add(new Parameter("lm_head.weight", OutputWeightF32!, GradOutput));
        return list;
    }

    /// <summary>Zeroes every gradient (call once per optimizer step, before the micro-batches).</summary>
    public void ZeroGradients()
    {
        foreach (var p in TrainableParameters()) p.Grad.Floats.Clear();
    }

    /// <summary>The projection with HF module name <paramref name="module"/> (model.layers.3.self_attn.q_proj), or null.</summary>
    public Linear? FindLinear(string module)
    {
        const string prefix = "model.layers.";
        if (!module.StartsWith(prefix, StringComparison.Ordinal)) return null;
        int dot = module.IndexOf('.', prefix.Length);
        if (dot < 0 || !int.TryParse(module.AsSpan(prefix.Length, dot - prefix.Length), out int l) || (uint)l >= (uint)Layers.Length) return null;
        string leaf = module[(module.LastIndexOf('.') + 1)..];
        if (!Layers[l].ModuleNames.Contains(leaf)) return null;
        var linear = Layers[l].Projection(leaf);
        return linear.Name == module ? linear : null;
    }

    /// <summary>Removes every adapter named <paramref name="adapterName"/> from every projection.</summary>
    public void DetachAdapter(string adapterName)
    {
        foreach (var layer in Layers)
            foreach (var p in layer.Projections) p.Detach(adapterName);
        RestoreModules(adapterName);
    }
}
