// The Llama-family decoder (llama, mistral, qwen2, qwen3, smollm3, gemma2, gemma3_text): weights built from Hugging Face-named tensors, the forward
// (LlamaModel.Forward.cs), the backward for LoRA or full fine-tuning (LlamaModel.Backward.cs) and cached
// generation (LlamaModel.Generate.cs). Base weights are frozen and packed once; LoRA plugs in through Linear.
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

/// <summary>A Llama-family causal language model.</summary>
public sealed partial class LlamaModel : IDisposable
{
    private LlamaActivations? _acts;
    private CrossEntropyWorkspace? _ce;

    private LlamaModel(LlamaConfig config, Tensor? embedding, LlamaLayer[] layers, Tensor finalNorm, PackedWeight output, Tensor? outputF32)
    {
        Config = config;
        Embedding = embedding;
        Layers = layers;
        FinalNorm = finalNorm;
        Output = output;
        OutputWeightF32 = outputF32;
        Rope = RopeTable.Create(config.HeadDim, config.MaxPositionEmbeddings, config.RopeTheta, config.RopeScaling, config.RotaryDim, longFactors: false);
        RopeLocal = config.RopeLocalTheta is double local ? RopeTable.Create(config.HeadDim, config.MaxPositionEmbeddings, local, null) : Rope;
        RopeLong = config.LongRope ? RopeTable.Create(config.HeadDim, config.MaxPositionEmbeddings, config.RopeTheta, config.RopeScaling, config.RotaryDim, longFactors: true) : Rope;
    }

    /// <summary>Architecture.</summary>
    public LlamaConfig Config { get; }

    /// <summary>
    /// model.embed_tokens.weight (V, C): f32, or its stored type when that is compressed and the base is frozen; null for
    /// a frozen tied f32 embedding, which only <see cref="Output"/> holds (the lookup gathers its rows there).
    /// </summary>
    public Tensor? Embedding { get; private set; }

    /// <summary>Decoder layers.</summary>
    public LlamaLayer[] Layers { get; }

    /// <summary>model.norm.weight (C).</summary>
    public Tensor FinalNorm { get; }

    /// <summary>Output projection (V, C) packed: lm_head.weight, or the embedding when tied.</summary>
    public PackedWeight Output { get; private set; }

    /// <summary>lm_head.weight as f32 when untied (null when tied: then it is <see cref="Embedding"/>).</summary>
    public Tensor? OutputWeightF32 { get; private set; }

    /// <summary>The base ties lm_head to the embedding (tie_word_embeddings, or no lm_head.weight).</summary>
    public bool TiedOutput { get; private init; }

    /// <summary>Rotary cos/sin tables for every position up to max_position_embeddings.</summary>
    public RopeTable Rope { get; }

    /// <summary>The tables of the sliding-window layers (gemma3: rope_local_base_freq, no scaling); <see cref="Rope"/> otherwise.</summary>
    public RopeTable RopeLocal { get; }

    /// <summary>LongRoPE (phi3): the tables with long_factor, used for sequences longer than original_max_position_embeddings
    /// (as transformers' dynamic longrope update does); <see cref="Rope"/> (short_factor) otherwise.</summary>
    public RopeTable RopeLong { get; }

    // LongRoPE: set per pass by the longest sequence (Prepare) or the cache's capacity (generation).
    private bool _useLongRope;

    /// <summary>True when a sequence of <paramref name="length"/> positions uses LongRoPE's long factors.</summary>
    public bool UsesLongRope(int length) => Config.LongRope && length > Config.RopeScaling!.OriginalMaxPositionEmbeddings;

    private RopeTable RopeOf(int layer) => Config.UsesLocalRope(layer) ? RopeLocal : _useLongRope ? RopeLong : Rope;

    /// <summary>Recompute each layer's activations in the backward instead of keeping them (less memory, ~1.3x compute).</summary>
    public bool ActivationCheckpointing { get; set; }

    /// <summary>
    /// Generation (<see cref="ForwardCached"/>) with at most 4 new tokens: products over weights stored as Q4_0 or
    /// Q8_0 quantize the activations to Q8_0 and take integer block products, as llama.cpp does (default true;
    /// faster, logits within the activations' rounding: docs/kernels.md). False: float products, exact against
    /// the dequantized weights. Training and perplexity never use it.
    /// </summary>
    public bool Q8DecodeActivations { get; set; } = true;

    /// <summary>Full fine-tuning: gradients of embedding / final norm / untied output (null when frozen).</summary>
    public Tensor? GradEmbedding { get; private set; }

    /// <summary>Full fine-tuning: gradient of model.norm.weight.</summary>
    public Tensor? GradFinalNorm { get; private set; }

    /// <summary>Full fine-tuning: gradient of lm_head.weight (untied only).</summary>
    public Tensor? GradOutput { get; private set; }

    /// <summary>Bytes held by the current activation buffers (0 before the first pass).</summary>
    public long ActivationBytes => _acts?.Bytes ?? 0;

    /// <summary>
    /// Builds the model from tensors named as in Hugging Face checkpoints (model.embed_tokens.weight,
    /// model.layers.N.self_attn.q_proj.weight, ...; q/k rows in HF rotate_half order).
    /// </summary>
    /// <param name="fullFineTuning">Make every weight trainable (all gradients computed) instead of freezing the base;
    /// every weight is then widened to f32.</param>
    /// <param name="doubleQuant">Keep NF4 weights with double-quantized block scales (QLoRA's bnb_4bit_use_double_quant).</param>
    /// <param name="consumeTensors">The caller is done with <paramref name="tensors"/>: compressed tensors it owns become
    /// the model's storage without a copy (they are left disposed), so loading never holds a model twice.</param>
    /// <remarks>
    /// Matrices stored as anything but F32 (bf16, f16, NF4, ggml quant blocks) stay in that type, decoded inside the
    /// matmuls (QLoRA). A non-F32 embedding stays stored too: the lookup decodes the rows it needs, and a tied
    /// output projection reads the same bytes.
    /// </remarks>
    public static LlamaModel FromTensors(LlamaConfig config, IReadOnlyDictionary<string, Tensor> tensors, string source = "model",
        bool fullFineTuning = false, bool doubleQuant = false, bool consumeTensors = false)
    {
        config.Validate(source);
        if (fullFineTuning && config.GemmaNorms)
            throw new Core.UserErrorException($"{source}: full fine-tuning of {config.ModelType} is not supported (its norms are held as 1 + w); train a LoRA adapter instead.");
        int C = config.HiddenSize, H = config.IntermediateSize, V = config.VocabSize;
        int QD = config.NumAttentionHeads * config.HeadDim, KD = config.NumKeyValueHeads * config.HeadDim;

        Tensor Get(string name)
        {
            if (!tensors.TryGetValue(name, out var t))
                throw new Formats.ModelFormatException(source, null, $"tensor '{name}' is missing.");
            return t;
        }
        float[] Vector(string name, int n)
        {
            var t = Get(name);
            if (t.ElementCount != n) throw new Formats.ModelFormatException(source, null, $"tensor '{name}' has shape {t.ShapeText}, expected [{n}].");
            return WeightConversion.ToF32(t, name);
        }
        // Gemma's RMSNorm multiplies by (1 + w) computed in float32, so holding 1 + w rounded to float32 is exact.
        Tensor NormTensor(string name, int n)
        {
            var v = Vector(name, n);
            if (config.GemmaNorms) for (int i = 0; i < n; i++) v[i] = 1f + v[i];
            return Tensor.FromFloats(v, n);
        }
        float[]? OptionalBias(string name, int n) => tensors.ContainsKey(name) ? Vector(name, n) : null;
        Linear Proj(string prefix, int N, int K, bool bias)
        {
            string w = prefix + ".weight";
            // Full fine-tuning reads the tensor again below, so only a frozen weight's tensor is consumed here.
            var packed = WeightConversion.Pack(Get(w), w, N, K, widen: fullFineTuning, doubleQuant, consume: consumeTensors && !fullFineTuning);
            var linear = new Linear(prefix, packed, bias ? Vector(prefix + ".bias", N) : OptionalBias(prefix + ".bias", N));
            if (fullFineTuning) linear.MakeTrainable(WeightConversion.ToF32(Get(w), w));
            return linear;
        }

        var embT = Get("model.embed_tokens.weight");
        if (embT.Shape.Length != 2 || embT.Shape[0] != V || embT.Shape[1] != C)
            throw new Formats.ModelFormatException(source, null, $"'model.embed_tokens.weight' has shape {embT.ShapeText}, expected [{V}, {C}].");
        bool tied = config.TieWordEmbeddings || !tensors.ContainsKey("lm_head.weight");
        // A frozen tied f32 embedding is held once, as the output projection's panels; the lookup gathers its rows
        // there (Output.GatherRows). Keeping the row-major table too cost V·C·4 bytes more: 1 GiB at Llama-3.2-1B.
        // Full fine-tuning trains the embedding in f32; otherwise a compressed embedding stays compressed (and a tied
        // output reads its bytes). A type nothing can decode goes to ToF32, which refuses it with a message at load.
        PackedWeight? tiedF32Output = tied && embT.DType == DType.F32 && !fullFineTuning ? PackedWeight.FromF32(embT.Floats, V, C) : null;
        Tensor? embedding = tiedF32Output != null ? null
            : embT.DType == DType.F32 ? (consumeTensors ? embT.MoveOrCopy() : embT.Clone())
            : fullFineTuning || !Core.Quant.Dequant.CanDequantize(embT.DType)
            ? Tensor.FromFloats(WeightConversion.ToF32(embT, "model.embed_tokens.weight"), V, C)
            : consumeTensors ? embT.MoveOrCopy() : embT.Clone();
        if (consumeTensors) embT.Consume();

        var layers = new LlamaLayer[config.NumHiddenLayers];
        for (int l = 0; l < layers.Length; l++)
        {
            string p = $"model.layers.{l}";
            if (config.FusedProjections)
            {
                // phi3: the fused weights stay one matrix each (one GEMM; LoRA on the fused name is one A/B, as PEFT's).
                layers[l] = new LlamaLayer(l,
                    NormTensor($"{p}.input_layernorm.weight", C),
                    NormTensor($"{p}.post_attention_layernorm.weight", C),
                    Proj($"{p}.self_attn.qkv_proj", QD + 2 * KD, C, false),
                    Proj($"{p}.self_attn.o_proj", C, QD, false),
                    Proj($"{p}.mlp.gate_up_proj", 2 * H, C, false),
                    Proj($"{p}.mlp.down_proj", C, H, false))
                {
                    SlidingWindow = config.LayerWindow(l),
                };
                continue;
            }
            bool sandwich = config.SandwichNorms;
            layers[l] = new LlamaLayer(l,
                NormTensor($"{p}.input_layernorm.weight", C),
                NormTensor(sandwich ? $"{p}.pre_feedforward_layernorm.weight" : $"{p}.post_attention_layernorm.weight", C),
                Proj($"{p}.self_attn.q_proj", QD, C, config.QkvBias),
                Proj($"{p}.self_attn.k_proj", KD, C, config.QkvBias),
                Proj($"{p}.self_attn.v_proj", KD, C, config.QkvBias),
                Proj($"{p}.self_attn.o_proj", C, QD, config.OutputBias),
                Proj($"{p}.mlp.gate_proj", H, C, config.MlpBias),
                Proj($"{p}.mlp.up_proj", H, C, config.MlpBias),
                Proj($"{p}.mlp.down_proj", C, H, config.MlpBias))
            {
                QNorm = config.QkNorm ? NormTensor($"{p}.self_attn.q_norm.weight", config.HeadDim) : null,
                KNorm = config.QkNorm ? NormTensor($"{p}.self_attn.k_norm.weight", config.HeadDim) : null,
                AttnOutNorm = sandwich ? NormTensor($"{p}.post_attention_layernorm.weight", C) : null,
                FfnOutNorm = sandwich ? NormTensor($"{p}.post_feedforward_layernorm.weight", C) : null,
                UsesRope = config.UsesRope(l),
                SlidingWindow = config.LayerWindow(l),
            };
        }
        var finalNorm = NormTensor("model.norm.weight", C);

        PackedWeight output;
        Tensor? outputF32 = null;
        if (tied)
        {
            output = tiedF32Output ?? (embedding!.DType == DType.F32 ? PackedWeight.FromF32(embedding.Floats, V, C) : PackedWeight.ViewStored(embedding));
        }
        else
        {
            var head = Get("lm_head.weight");
            output = WeightConversion.Pack(head, "lm_head.weight", V, C, widen: fullFineTuning, consume: consumeTensors && !fullFineTuning);
            if (fullFineTuning) outputF32 = Tensor.FromFloats(WeightConversion.ToF32(head, "lm_head.weight"), V, C);
        }
        var model = new LlamaModel(config, embedding, layers, finalNorm, output, outputF32) { TiedOutput = tied };
        if (fullFineTuning)
        {
            foreach (var layer in layers)
            {
                layer.GradInputNorm = Tensor.Zeros(DType.F32, C);
                layer.GradPostAttentionNorm = Tensor.Zeros(DType.F32, C);
                if (layer.QNorm != null) layer.GradQNorm = Tensor.Zeros(DType.F32, config.HeadDim);
                if (layer.KNorm != null) layer.GradKNorm = Tensor.Zeros(DType.F32, config.HeadDim);
            }
            model.GradEmbedding = Tensor.Zeros(DType.F32, V, C);
            model.GradFinalNorm = Tensor.Zeros(DType.F32, C);
            if (outputF32 != null) model.GradOutput = Tensor.Zeros(DType.F32, V, C);
        }
        return model;
    }

    /// <summary>Bytes held by the frozen base weights: packed projections, output, embedding and norms.</summary>
    public long BaseWeightBytes =>
        Layers.Sum(l => l.Projections.Sum(p => p.Packed.Bytes + (p.Bias?.Length ?? 0) * 4L) + l.InputNorm.ByteLength + l.PostAttentionNorm.ByteLength
            + (l.QNorm?.ByteLength ?? 0) + (l.KNorm?.ByteLength ?? 0) + (l.AttnOutNorm?.ByteLength ?? 0) + (l.FfnOutNorm?.ByteLength ?? 0))
        + Output.Bytes + (Embedding?.ByteLength ?? 0) + FinalNorm.ByteLength;

    /// <summary>The projection <paramref name="module"/> (q_proj ... down_proj) of layer <paramref name="layer"/>.</summary>
    public Linear Projection(int layer, string module)
    {
        if ((uint)layer >= (uint)Layers.Length)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"the model has layers 0..{Layers.Length - 1}");
        return Layers[layer].Projection(module);
    }

    /// <summary>After the optimizer changed trainable weights: re-pack projections (and the tied output).</summary>
    public void RepackTrainable()
    {
        foreach (var layer in Layers)
            foreach (var p in layer.Projections) p.Repack();
        if (HeadGrad != null)
            Output = PackedWeight.FromF32((OutputWeightF32 ?? Embedding!).Floats, Config.VocabSize, Config.HiddenSize);
    }

    private LlamaActivations Activations(int B, int T)
    {
        int maxRank = 0;   // a loop, not LINQ: every forward asks, and a training step must not allocate
        foreach (var layer in Layers) maxRank = Math.Max(maxRank, layer.MaxAdapterRank);
        // Reused while B·T fits: packed micro-batches change T nearly every step, and their B·T never exceeds
        // micro_batch_size x cutoff_len, so the buffers stop growing after the longest micro-batch.
        if (_acts == null || (long)B * T > _acts.Capacity || _acts.Checkpointing != ActivationCheckpointing || _acts.MaxRank < maxRank)
        {
            _acts = null;
            _acts = new LlamaActivations(Config, B, T, ActivationCheckpointing, maxRank);
        }
        _acts.Reshape(B, T);
        return _acts;
    }

    // Rows of logits per cross-entropy chunk: up to 64 MiB of them, at most 256 rows over f32 panels (48 MiB at
    // V = 49152) and 512 over a compressed output projection, which is decoded once per chunk. Each chunk streams
    // the whole lm_head twice (logits, then dh), so few rows make skinny matmuls: at (2048 tokens, 576, 49152) the
    // fused forward-backward took 1.08-1.17 s with 85-row chunks (16 MiB) and 0.93-0.96 s with 256 (512: 0.93).
    private CrossEntropyWorkspace CeWorkspace() =>
        _ce ??= new CrossEntropyWorkspace(CrossEntropyChunkRows(Config.VocabSize, Output.StorageDType == DType.F32), Config.VocabSize);

    /// <summary>Rows per cross-entropy chunk for a vocabulary of <paramref name="vocab"/> (its logits block holds rows × vocab floats).</summary>
    public static int CrossEntropyChunkRows(int vocab, bool f32Output) => Math.Clamp((1 << 24) / vocab, 1, f32Output ? 256 : 512);

    /// <summary>Drops the activation buffers (they are reallocated on the next pass).</summary>
    public void ReleaseActivations() => _acts = null;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        Embedding?.Dispose();
        if (!ReferenceEquals(_replacedEmbedding, Embedding)) _replacedEmbedding?.Dispose();
        FinalNorm.Dispose();
        OutputWeightF32?.Dispose();
        GradEmbedding?.Dispose();
        GradFinalNorm?.Dispose();
        GradOutput?.Dispose();
        _acts = null;
    }
}
