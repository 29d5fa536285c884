// Forward pass over a batch: embedding, L decoder layers (RMSNorm, q/k/v, [q/k per-head RMSNorm], RoPE (unless the
// layer has none), GQA attention, o, [gemma: RMSNorm of the branch], RMSNorm, SwiGLU or GeGLU MLP, [gemma: RMSNorm of
// the branch],
// SwiGLU MLP), final RMSNorm, then either the fused output-projection + cross-entropy (loss) or full logits.
// Hugging Face semantics: position ids 0..T-1 per row, key j visible to query i iff j <= i and mask[j] = 1,
// loss = mean over non-ignored shifted targets. A packed batch (sequence ids) restarts the position ids at each
// sample, lets a query see only its own sample's keys, and ignores the target after each sample's last token, so
// its loss and gradients are those of its samples run one by one.
using LoraSharp.Core.Diagnostics;
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>Mean cross-entropy loss of the batch (no gradients); NaN when no position has a target.</summary>
    public double Loss(Batch batch)
    {
        var acts = Prepare(batch);
        ForwardLayers(acts, training: false, dropoutSeed: 0);
        FinalNormForward(acts);
        double sum = CrossEntropy.ForwardBackward(acts.XnF, Output, acts.Targets, [], 0f, CeWorkspace(), acts.M, Config.HiddenSize, out int count, Config.LogitSoftCap);
        return count == 0 ? double.NaN : sum / count;
    }

    /// <summary>Per-position losses [B·T] (0 where the shifted target is ignored) and their count.</summary>
    public float[] PositionLosses(Batch batch, out int count)
    {
        var acts = Prepare(batch);
        ForwardLayers(acts, training: false, dropoutSeed: 0);
        FinalNormForward(acts);
        var losses = new float[acts.M];
        CrossEntropy.RowLosses(acts.XnF, Output, acts.Targets, losses, CeWorkspace(), acts.M, Config.HiddenSize, out count, Config.LogitSoftCap);
        return losses;
    }

    /// <summary>Logits [B, T, V] of every position.</summary>
    public float[] Logits(Batch batch)
    {
        var acts = Prepare(batch);
        ForwardLayers(acts, training: false, dropoutSeed: 0);
        FinalNormForward(acts);
        var logits = new float[(long)acts.M * Config.VocabSize];
        MatMul.Forward(acts.XnF, Output, logits, acts.M);
        if (Config.LogitSoftCap > 0) SoftCap.Forward(logits, logits, Config.LogitSoftCap);   // gemma2's final_logit_softcapping
        return logits;
    }

    private LlamaActivations Prepare(Batch batch)
    {
        var acts = Activations(batch.B, batch.T);
        int V = Config.VocabSize;
        foreach (int id in batch.InputIds)
            if ((uint)id >= (uint)V) throw new ArgumentException($"Token id {id} is outside the vocabulary (size {V}).");
        int longest = batch.LongestSequence;
        if (longest > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"Sequence length {longest} exceeds the model's context of {Config.MaxPositionEmbeddings} (max_position_embeddings).");
        _useLongRope = UsesLongRope(longest);   // LongRoPE: long factors beyond original_max_position_embeddings (HF's rule)
        batch.PositionIds(acts.Positions);
        batch.AttentionMask.CopyTo(acts.KeyMask);
        acts.SequenceIds = batch.SequenceIds;
        batch.ShiftedTargets(acts.Targets);
        Embedding_Forward(batch.InputIds, acts.X[0], acts.M);
        return acts;
    }

    private void Embedding_Forward(ReadOnlySpan<int> ids, Span<float> x, int M)
    {
        if (Embedding == null) Output.GatherRows(ids[..M], x[..(M * Config.HiddenSize)]);   // tied f32: the output panels hold it
        else if (Embedding.DType == DType.F32) Core.Kernels.Embedding.Forward(ids, Embedding.Floats, x, M, Config.HiddenSize);
        else Core.Kernels.Embedding.ForwardStored(ids, Embedding.DType, Embedding.Bytes, x, M, Config.HiddenSize);
        float scale = Config.EmbeddingScale;   // gemma: sqrt(hidden_size)
        if (scale != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(x[..(M * Config.HiddenSize)], scale, x[..(M * Config.HiddenSize)]);
    }

    private void ForwardLayers(LlamaActivations acts, bool training, ulong dropoutSeed)
    {
        for (int l = 0; l < Layers.Length; l++) LayerForward(l, acts, training, dropoutSeed);
    }

    private void FinalNormForward(LlamaActivations acts)
        => RmsNorm.Forward(acts.X[Layers.Length], FinalNorm.Floats, acts.XnF, acts.RstdF, acts.M, Config.HiddenSize, (float)Config.RmsNormEps);

    /// <summary>Runs layer l from acts.X[l] into acts.X[l+1], saving what its backward needs in acts.Layers[l].</summary>
    private void LayerForward(int l, LlamaActivations acts, bool training, ulong dropoutSeed)
    {
        var c = Config;
        var w = Layers[l];
        var a = acts.Layers[l];
        int M = acts.M, C = c.HiddenSize, NH = c.NumAttentionHeads, NKV = c.NumKeyValueHeads, HS = c.HeadDim;
        float eps = (float)c.RmsNormEps;
        var x = acts.X[l];
        var scratch = acts.LoraScratch.AsSpan();
        ulong seed = LayerSeed(dropoutSeed, l);

        long t0 = StepProfile.Start();
        RmsNorm.Forward(x, w.InputNorm.Floats, a.Xn1, a.Rstd1, M, C, eps);
        StepProfile.Stop(StepPhase.Norm, t0);
        if (w.Qkv != null)
        {
            // phi3: one GEMM for the fused [q | k | v], then the columns split out (seeds as q_proj's).
            var fused = acts.Fused(NH * HS + 2 * NKV * HS);
            w.Qkv.Forward(a.Xn1, fused, M, false, scratch, seed + 1, training);
            t0 = StepProfile.Start();
            SplitColumns(fused, M, a.Q, NH * HS, a.K, NKV * HS, a.V, NKV * HS);
            StepProfile.Stop(StepPhase.Copies, t0);
        }
        else if (w.QNorm == null)
        {
            w.Q.Forward(a.Xn1, a.Q, M, false, scratch, seed + 1, training);
            w.K.Forward(a.Xn1, a.K, M, false, scratch, seed + 2, training);
        }
        else
        {
            // qwen3: every head of q and k is RMS-normalised (weight [HS]) before RoPE; the raw projections are kept.
            w.Q.Forward(a.Xn1, a.QRaw, M, false, scratch, seed + 1, training);
            w.K.Forward(a.Xn1, a.KRaw, M, false, scratch, seed + 2, training);
            t0 = StepProfile.Start();
            RmsNorm.Forward(a.QRaw, w.QNorm.Floats, a.Q, a.RstdQ, M * NH, HS, eps);
            RmsNorm.Forward(a.KRaw, w.KNorm!.Floats, a.K, a.RstdK, M * NKV, HS, eps);
            StepProfile.Stop(StepPhase.Norm, t0);
        }
        if (w.Qkv == null) w.V.Forward(a.Xn1, a.V, M, false, scratch, seed + 3, training);
        if (w.UsesRope)
        {
            t0 = StepProfile.Start();
            var rope = RopeOf(l);
            Core.Kernels.Rope.Forward(a.Q, acts.Positions, rope, M, NH, HS);
            Core.Kernels.Rope.Forward(a.K, acts.Positions, rope, M, NKV, HS);
            StepProfile.Stop(StepPhase.Rope, t0);
        }
        t0 = StepProfile.Start();
        Attention.Forward(a.Q, a.K, a.V, acts.KeyMask, acts.SequenceIds, a.Att, a.Lse, acts.B, acts.T, acts.T, NH, NKV, HS,
            c.AttentionScale, w.SlidingWindow, c.AttentionSoftCap);
        StepProfile.Stop(StepPhase.AttentionForward, t0);

        if (w.AttnOutNorm == null)
        {
            t0 = StepProfile.Start();
            x.CopyTo(a.XMid);
            StepProfile.Stop(StepPhase.Copies, t0);
            w.O.Forward(a.Att, a.XMid, M, true, scratch, seed + 4, training);
        }
        else
        {
            // gemma: XMid = x + post_attention_layernorm(o_proj(att))
            w.O.Forward(a.Att, a.AttnOut, M, false, scratch, seed + 4, training);
            t0 = StepProfile.Start();
            RmsNorm.Forward(a.AttnOut, w.AttnOutNorm.Floats, acts.Normed, a.RstdAttnOut, M, C, eps);
            System.Numerics.Tensors.TensorPrimitives.Add(x, acts.Normed, a.XMid);
            StepProfile.Stop(StepPhase.Norm, t0);
        }

        t0 = StepProfile.Start();
        RmsNorm.Forward(a.XMid, w.PostAttentionNorm.Floats, a.Xn2, a.Rstd2, M, C, eps);
        StepProfile.Stop(StepPhase.Norm, t0);
        if (w.GateUp != null)
        {
            // phi3: one GEMM for the fused [gate | up], then the halves split out.
            int H = c.IntermediateSize;
            var fused = acts.Fused(2 * H);
            w.GateUp.Forward(a.Xn2, fused, M, false, scratch, seed + 5, training);
            t0 = StepProfile.Start();
            SplitColumns(fused, M, a.Gate, H, a.Up, H, [], 0);
            StepProfile.Stop(StepPhase.Copies, t0);
        }
        else
        {
            w.Gate.Forward(a.Xn2, a.Gate, M, false, scratch, seed + 5, training);
            w.Up.Forward(a.Xn2, a.Up, M, false, scratch, seed + 6, training);
        }
        t0 = StepProfile.Start();
        GatedActivation(a.Gate, a.Up, acts.Hidden);
        StepProfile.Stop(StepPhase.SwiGlu, t0);

        var next = acts.X[l + 1];
        if (w.FfnOutNorm == null)
        {
            t0 = StepProfile.Start();
            a.XMid.CopyTo(next);
            StepProfile.Stop(StepPhase.Copies, t0);
            w.Down.Forward(acts.Hidden, next, M, true, scratch, seed + 7, training);
        }
        else
        {
            // gemma: X[l+1] = XMid + post_feedforward_layernorm(down_proj(h))
            w.Down.Forward(acts.Hidden, a.FfnOut, M, false, scratch, seed + 7, training);
            t0 = StepProfile.Start();
            RmsNorm.Forward(a.FfnOut, w.FfnOutNorm.Floats, acts.Normed, a.RstdFfnOut, M, C, eps);
            System.Numerics.Tensors.TensorPrimitives.Add(a.XMid, acts.Normed, next);
            StepProfile.Stop(StepPhase.Norm, t0);
        }
    }

    // The MLP gate: silu(gate) * up (SwiGLU), or gelu_tanh(gate) * up (gemma's GeGLU).
    private void GatedActivation(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        if (Config.GatedGelu) GeGlu.Forward(gate, up, h);
        else SwiGlu.Forward(gate, up, h);
    }

    // Distinct dropout streams per (step seed, layer, projection): SplitMix64 of the pair.
    private static ulong LayerSeed(ulong seed, int layer)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (ulong)(layer + 1) * 16;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
