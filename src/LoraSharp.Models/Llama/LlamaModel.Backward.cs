// Backward pass: gradients of the loss for LoRA parameters (and, in full fine-tuning, every weight). Frozen base
// weights get no dW; the pass stops at the lowest layer that holds a trainable parameter. Gradients are ADDED
// (callers zero them per optimizer step), so micro-batches accumulate naturally.
using LoraSharp.Core.Diagnostics;
using LoraSharp.Core.Kernels;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>
    /// Forward and backward on <paramref name="batch"/>. Returns the SUM of per-target losses and their count;
    /// gradients += <paramref name="gradScale"/> · d(sum)/dθ. Use gradScale = 1 / (targets over all accumulated
    /// micro-batches) to get the gradient of the mean loss of the whole batch.
    /// </summary>
    public double ForwardBackward(Batch batch, float gradScale, ulong dropoutSeed, out int count)
    {
        var acts = Prepare(batch);
        var c = Config;
        int M = acts.M, C = c.HiddenSize, L = Layers.Length;
        AddNeftuneNoise(batch, acts.X[0], C, _neftuneNoiseAlpha, dropoutSeed);
        int lowest = LowestTrainableLayer();

        if (acts.Checkpointing)
        {
            // Only the residual stream is kept: run layers forward, discarding their internals.
            for (int l = 0; l < L; l++) LayerForward(l, acts, training: true, dropoutSeed);
        }
        else
        {
            ForwardLayers(acts, training: true, dropoutSeed);
        }
        { long t0 = StepProfile.Start();
        FinalNormForward(acts);
        StepProfile.Stop(StepPhase.Norm, t0); }

        var dXn = acts.DXn;
        dXn.Clear();
        double loss;
        if (HeadGrad is { } headGrad)
        {
            // Full fine-tuning or modules_to_save lm_head: the output projection (tied embedding or lm_head) learns too.
            var dOut = headGrad.Floats;
            var wOut = (OutputWeightF32 ?? Embedding!).Floats;   // a trainable head is always held in f32
            { long t0 = StepProfile.Start();
            loss = CrossEntropy.ForwardBackwardWithWeightGrad(acts.XnF, Output, acts.Targets, dXn, gradScale, CeWorkspace(), M, C, out count, dOut, wOut, Config.LogitSoftCap);
            StepProfile.Stop(StepPhase.CrossEntropy, t0); }
        }
        else
        {
            { long t0 = StepProfile.Start();
            loss = CrossEntropy.ForwardBackward(acts.XnF, Output, acts.Targets, dXn, gradScale, CeWorkspace(), M, C, out count, Config.LogitSoftCap);
            StepProfile.Stop(StepPhase.CrossEntropy, t0); }
        }
        if (lowest > L) return loss;   // nothing trainable below the head
        BackwardBelowHead(acts, batch, lowest, dropoutSeed);
        return loss;
    }

    // From dL/dXn (in acts.DXn) down through the final norm and every layer to the lowest trainable one.
    private void BackwardBelowHead(LlamaActivations acts, Batch batch, int lowest, ulong dropoutSeed)
    {
        var c = Config;
        int M = acts.M, C = c.HiddenSize, L = Layers.Length;
        var dXn = acts.DXn;

        var dX = acts.DX;
        dX.Clear();
        { long t0 = StepProfile.Start();
        RmsNorm.Backward(dXn, acts.X[L], FinalNorm.Floats, acts.RstdF, dX, GradFinalNorm is { } gf ? gf.Floats : [], M, C);
        StepProfile.Stop(StepPhase.Norm, t0); }

        for (int l = L - 1; l >= Math.Max(lowest, 0); l--)
        {
            if (acts.Checkpointing) LayerForward(l, acts, training: true, dropoutSeed);
            LayerBackward(l, acts, needInputGrad: l > lowest || GradEmbedding != null);
        }
        if (GradEmbedding != null) Core.Kernels.Embedding.Backward(dX, batch.InputIds, GradEmbedding.Floats, M, C);
    }

    /// <summary>Index of the lowest layer with a trainable parameter; L+1 when none; -1 when the embedding trains.</summary>
    private int LowestTrainableLayer()
    {
        if (GradEmbedding != null) return 0;
        for (int l = 0; l < Layers.Length; l++)
            if (Layers[l].HasTrainable) return l;
        return Layers.Length + 1;
    }

    /// <summary>
    /// Backward of layer l: acts.DX holds dL/dX[l+1] on entry and dL/dX[l] on exit (when needed).
    /// </summary>
    private void LayerBackward(int l, LlamaActivations acts, bool needInputGrad)
    {
        var c = Config;
        var w = Layers[l];
        var a = acts.Layers[l];
        int M = acts.M, C = c.HiddenSize, NH = c.NumAttentionHeads, NKV = c.NumKeyValueHeads, HS = c.HeadDim;
        var scratch = acts.LoraScratch.AsSpan();
        var dX = acts.DX;

        // MLP: X[l+1] = XMid + down(silu(gate(xn2)) * up(xn2))
        { long t0 = StepProfile.Start();
        GatedActivation(a.Gate, a.Up, acts.Hidden);   // recompute instead of keeping (M, H) per layer
        StepProfile.Stop(StepPhase.SwiGlu, t0); }
        var dH = acts.DH; dH.Clear();
        ReadOnlySpan<float> dDown = dX;
        if (w.FfnOutNorm != null)
        {
            // gemma: back through post_feedforward_layernorm (DXn is free until the gate/up backward below).
            var dFfn = acts.DXn; dFfn.Clear();
            long tn = StepProfile.Start();
            RmsNorm.Backward(dX, a.FfnOut, w.FfnOutNorm.Floats, a.RstdFfnOut, dFfn, [], M, C);
            StepProfile.Stop(StepPhase.Norm, tn);
            dDown = dFfn;
        }
        w.Down.Backward(dDown, acts.Hidden, dH, M, scratch);
        var dGate = acts.DGate; dGate.Clear();
        var dUp = acts.DUp; dUp.Clear();
        { long t0 = StepProfile.Start();
        if (c.GatedGelu) GeGlu.Backward(dH, a.Gate, a.Up, dGate, dUp);
        else SwiGlu.Backward(dH, a.Gate, a.Up, dGate, dUp);
        StepProfile.Stop(StepPhase.SwiGlu, t0); }
        var dXn = acts.DXn; dXn.Clear();
        if (w.GateUp != null)
        {
            // phi3: gather [dGate | dUp] for the fused projection's backward.
            int H = c.IntermediateSize;
            var dFused = acts.Fused(2 * H);
            long tc = StepProfile.Start();
            JoinColumns(dGate, H, dUp, H, [], 0, M, dFused);
            StepProfile.Stop(StepPhase.Copies, tc);
            w.GateUp.Backward(dFused, a.Xn2, dXn, M, scratch);
        }
        else
        {
            w.Gate.Backward(dGate, a.Xn2, dXn, M, scratch);
            w.Up.Backward(dUp, a.Xn2, dXn, M, scratch);
        }
        { long t0 = StepProfile.Start();
        RmsNorm.Backward(dXn, a.XMid, w.PostAttentionNorm.Floats, a.Rstd2, dX, w.GradPostAttentionNorm is { } gp ? gp.Floats : [], M, C);   // dX = dL/dXMid
        StepProfile.Stop(StepPhase.Norm, t0); }

        // Attention: XMid = X[l] + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1)))
        var dAtt = acts.DAtt; dAtt.Clear();
        ReadOnlySpan<float> dO = dX;
        if (w.AttnOutNorm != null)
        {
            // gemma: back through post_attention_layernorm (DXn is free until the q/k/v backward below).
            var dAttnOut = acts.DXn; dAttnOut.Clear();
            long tn = StepProfile.Start();
            RmsNorm.Backward(dX, a.AttnOut, w.AttnOutNorm.Floats, a.RstdAttnOut, dAttnOut, [], M, C);
            StepProfile.Stop(StepPhase.Norm, tn);
            dO = dAttnOut;
        }
        w.O.Backward(dO, a.Att, dAtt, M, scratch);
        var dQ = acts.DQ; dQ.Clear();
        var dK = acts.DK; dK.Clear();
        var dV = acts.DV; dV.Clear();
        long ta = StepProfile.Start();
        Attention.Backward(dAtt, a.Q, a.K, a.V, a.Att, a.Lse, acts.KeyMask, acts.SequenceIds, dQ, dK, dV, acts.B, acts.T, acts.T, NH, NKV, HS,
            c.AttentionScale, w.SlidingWindow, c.AttentionSoftCap);
        StepProfile.Stop(StepPhase.AttentionBackward, ta);
        if (w.UsesRope)
        {
            ta = StepProfile.Start();
            var rope = RopeOf(l);
            Core.Kernels.Rope.Backward(dQ, acts.Positions, rope, M, NH, HS);
            Core.Kernels.Rope.Backward(dK, acts.Positions, rope, M, NKV, HS);
            StepProfile.Stop(StepPhase.Rope, ta);
        }
        if (w.QNorm != null)
        {
            // qwen3: back through the per-head q/k RMSNorm to the projections' outputs.
            var dQRaw = acts.DQRaw; dQRaw.Clear();
            var dKRaw = acts.DKRaw; dKRaw.Clear();
            long tn = StepProfile.Start();
            RmsNorm.Backward(dQ, a.QRaw, w.QNorm.Floats, a.RstdQ, dQRaw, w.GradQNorm is { } gq ? gq.Floats : [], M * NH, HS);
            RmsNorm.Backward(dK, a.KRaw, w.KNorm!.Floats, a.RstdK, dKRaw, w.GradKNorm is { } gk ? gk.Floats : [], M * NKV, HS);
            StepProfile.Stop(StepPhase.Norm, tn);
            dQ = dQRaw;
            dK = dKRaw;
        }

        // Below the lowest trainable layer nothing needs dL/dX[l] (full fine-tuning always needs it: the embedding trains).
        var dXn1 = needInputGrad ? dXn : [];
        if (needInputGrad) dXn1.Clear();
        if (w.Qkv != null)
        {
            // phi3: gather [dQ | dK | dV] for the fused projection's backward.
            var dFused = acts.Fused(NH * HS + 2 * NKV * HS);
            long tc = StepProfile.Start();
            JoinColumns(dQ, NH * HS, dK, NKV * HS, dV, NKV * HS, M, dFused);
            StepProfile.Stop(StepPhase.Copies, tc);
            w.Qkv.Backward(dFused, a.Xn1, dXn1, M, scratch);
        }
        else
        {
            w.Q.Backward(dQ, a.Xn1, dXn1, M, scratch);
            w.K.Backward(dK, a.Xn1, dXn1, M, scratch);
            w.V.Backward(dV, a.Xn1, dXn1, M, scratch);
        }
        if (needInputGrad)
        {
            // dX (= dL/dXMid) flows through the residual; the norm adds its part: dX becomes dL/dX[l].
            { long t0 = StepProfile.Start();
            RmsNorm.Backward(dXn1, acts.X[l], w.InputNorm.Floats, a.Rstd1, dX, w.GradInputNorm is { } gi ? gi.Floats : [], M, C);
            StepProfile.Stop(StepPhase.Norm, t0); }
        }
    }
}
