// The weights of one decoder layer: two RMSNorm weights and seven projections (the LoRA targets), plus the family
// deltas: qwen3's per-head q/k RMSNorm weights and smollm3's per-layer "no RoPE" flag. A phi3 layer holds four
// projections instead (fused qkv_proj and gate_up_proj, one matrix each, one GEMM each); then Q, K, V, Gate and Up are null.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

/// <summary>One Llama decoder layer's parameters.</summary>
public sealed class LlamaLayer : IDisposable
{
    /// <summary>PEFT/HF names of the seven projections, in PEFT's usual order.</summary>
    public static readonly string[] ProjectionNames = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>Creates a layer from its parts.</summary>
    public LlamaLayer(int index, Tensor inputNorm, Tensor postAttentionNorm, Linear q, Linear k, Linear v, Linear o, Linear gate, Linear up, Linear down)
    {
        Index = index;
        InputNorm = inputNorm;
        PostAttentionNorm = postAttentionNorm;
        Q = q; K = k; V = v; O = o; Gate = gate; Up = up; Down = down;
        _projections = [q, k, v, o, gate, up, down];
        ModuleNames = ProjectionNames;
    }

    /// <summary>PEFT/HF names of a fused (phi3) layer's four projections.</summary>
    public static readonly string[] FusedProjectionNames = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

    /// <summary>Creates a phi3 layer: <paramref name="qkv"/> rows are [q | k | v], <paramref name="gateUp"/> rows [gate | up].</summary>
    public LlamaLayer(int index, Tensor inputNorm, Tensor postAttentionNorm, Linear qkv, Linear o, Linear gateUp, Linear down)
    {
        Index = index;
        InputNorm = inputNorm;
        PostAttentionNorm = postAttentionNorm;
        Qkv = qkv; O = o; GateUp = gateUp; Down = down;
        Q = K = V = Gate = Up = null!;
        _projections = [qkv, o, gateUp, down];
        ModuleNames = FusedProjectionNames;
    }

    /// <summary>The module names of this layer's projections (<see cref="ProjectionNames"/> or <see cref="FusedProjectionNames"/>).</summary>
    public IReadOnlyList<string> ModuleNames { get; }

    /// <summary>phi3: self_attn.qkv_proj ((NH + 2·NKV)·HS, C), rows [q | k | v]; null in unfused layers.</summary>
    public Linear? Qkv { get; }

    /// <summary>phi3: mlp.gate_up_proj (2·H, C), rows [gate | up]; null in unfused layers.</summary>
    public Linear? GateUp { get; }

    // Built once: the training step walks it every forward and backward, so it must not be a fresh array each time.
    private readonly Linear[] _projections;

    /// <summary>Layer index l.</summary>
    public int Index { get; }

    /// <summary>input_layernorm.weight (C).</summary>
    public Tensor InputNorm { get; }

    /// <summary>The MLP's input norm (C): post_attention_layernorm.weight (Llama), pre_feedforward_layernorm.weight (gemma, as 1 + w).</summary>
    public Tensor PostAttentionNorm { get; }

    /// <summary>Full fine-tuning: gradients of the norm weights (null when frozen).</summary>
    public Tensor? GradInputNorm { get; set; }

    /// <summary>Full fine-tuning: gradient of post_attention_layernorm.weight.</summary>
    public Tensor? GradPostAttentionNorm { get; set; }

    /// <summary>self_attn.q_norm.weight (HS): per-head RMSNorm of the queries before RoPE (qwen3); null otherwise.</summary>
    public Tensor? QNorm { get; init; }

    /// <summary>self_attn.k_norm.weight (HS): per-head RMSNorm of the keys before RoPE (qwen3); null otherwise.</summary>
    public Tensor? KNorm { get; init; }

    /// <summary>Full fine-tuning: gradient of q_norm.weight.</summary>
    public Tensor? GradQNorm { get; set; }

    /// <summary>Full fine-tuning: gradient of k_norm.weight.</summary>
    public Tensor? GradKNorm { get; set; }

    /// <summary>Gemma: post_attention_layernorm.weight (C) as used, 1 + w, on the attention output before the residual
    /// add (then <see cref="PostAttentionNorm"/> holds pre_feedforward_layernorm); null for Llama-style layers.</summary>
    public Tensor? AttnOutNorm { get; init; }

    /// <summary>Gemma: post_feedforward_layernorm.weight (C) as used, 1 + w, on the MLP output before the residual add.</summary>
    public Tensor? FfnOutNorm { get; init; }

    /// <summary>Sliding window of this layer's attention (0 = the whole context).</summary>
    public int SlidingWindow { get; init; }

    /// <summary>False for a layer that does not rotate q and k (smollm3's NoPE layers).</summary>
    public bool UsesRope { get; init; } = true;

    /// <summary>self_attn.q_proj (NH·HS, C); null in a fused (phi3) layer, as are K, V, Gate and Up.</summary>
    public Linear Q { get; }
    /// <summary>self_attn.k_proj (NKV·HS, C).</summary>
    public Linear K { get; }
    /// <summary>self_attn.v_proj (NKV·HS, C).</summary>
    public Linear V { get; }
    /// <summary>self_attn.o_proj (C, NH·HS).</summary>
    public Linear O { get; }
    /// <summary>mlp.gate_proj (H, C).</summary>
    public Linear Gate { get; }
    /// <summary>mlp.up_proj (H, C).</summary>
    public Linear Up { get; }
    /// <summary>mlp.down_proj (C, H).</summary>
    public Linear Down { get; }

    /// <summary>The projection with PEFT name <paramref name="module"/> (q_proj, ..., down_proj).</summary>
    public Linear Projection(string module) => Qkv != null
        ? module switch
        {
            "qkv_proj" => Qkv,
            "o_proj" => O,
            "gate_up_proj" => GateUp!,
            "down_proj" => Down,
            _ => throw new ArgumentException($"'{module}' is not a projection of this phi3 layer; valid: {string.Join(", ", FusedProjectionNames)}."),
        }
        : module switch
    {
        "q_proj" => Q,
        "k_proj" => K,
        "v_proj" => V,
        "o_proj" => O,
        "gate_proj" => Gate,
        "up_proj" => Up,
        "down_proj" => Down,
        _ => throw new ArgumentException($"'{module}' is not a Llama projection; valid: {string.Join(", ", ProjectionNames)}."),
    };

    /// <summary>All projections in <see cref="ModuleNames"/> order.</summary>
    public IReadOnlyList<Linear> Projections => _projections;

    /// <summary>The largest rank of any adapter on this layer's projections (0 without adapters).</summary>
    public int MaxAdapterRank
    {
        get
        {
            int r = 0;
            foreach (var p in _projections) r = Math.Max(r, p.MaxAdapterRank);
            return r;
        }
    }

    /// <summary>True when something in this layer is trainable.</summary>
    public bool HasTrainable
    {
        get
        {
            if (GradInputNorm != null) return true;
            foreach (var p in _projections) if (p.HasTrainable) return true;
            return false;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in Projections) p.Dispose();
        InputNorm.Dispose();
        PostAttentionNorm.Dispose();
        GradInputNorm?.Dispose();
        GradPostAttentionNorm?.Dispose();
        QNorm?.Dispose();
        AttnOutNorm?.Dispose();
        FfnOutNorm?.Dispose();
        KNorm?.Dispose();
        GradQNorm?.Dispose();
        GradKNorm?.Dispose();
    }
}
