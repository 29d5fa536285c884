// Incremental forward with a KV cache: new tokens at positions cache.Length.. attend to everything cached,
// and only the last position's logits are computed. Used by generation; training never comes here.
using LoraSharp.Core.Kernels;

namespace LoraSharp.Models.Llama;

public sealed partial class LlamaModel
{
    /// <summary>A cache for one sequence of up to <paramref name="capacity"/> positions, prefilling up to <paramref name="maxChunk"/> at once.</summary>
    public KvCache CreateCache(int capacity, int maxChunk = 512)
    {
        if (capacity > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"A cache of {capacity} positions exceeds the model's context of {Config.MaxPositionEmbeddings}.");
        return new KvCache(Config, capacity, Math.Min(maxChunk, capacity));
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> to the cached sequence and returns the logits [V] of the last one
    /// (a view into the cache, valid until the next call).
    /// </summary>
    public ReadOnlySpan<float> ForwardCached(scoped ReadOnlySpan<int> tokens, KvCache cache)
    {
        if (tokens.IsEmpty) throw new ArgumentException("No tokens to run.");
        if (cache.Length + tokens.Length > cache.Capacity)
            throw new ArgumentException($"{cache.Length} cached + {tokens.Length} new positions exceed the cache capacity {cache.Capacity}.");
        for (int start = 0; start < tokens.Length; start += cache.MaxChunk)
            ForwardChunk(tokens.Slice(start, Math.Min(cache.MaxChunk, tokens.Length - start)), cache);
        return cache.Logits;
    }

    private void ForwardChunk(ReadOnlySpan<int> tokens, KvCache cache)
    {
        var c = Config;
        int n = tokens.Length, C = c.HiddenSize, NH = c.NumAttentionHeads, NKV = c.NumKeyValueHeads, HS = c.HeadDim;
        int KD = NKV * HS, QD = NH * HS, H = c.IntermediateSize, V = c.VocabSize;
        int past = cache.Length, total = past + n;
        float eps = (float)c.RmsNormEps;
        foreach (int id in tokens)
            if ((uint)id >= (uint)V) throw new ArgumentException($"Token id {id} is outside the vocabulary (size {V}).");

        var x = cache.X.AsSpan(0, n * C);
        var xn = cache.Xn.AsSpan(0, n * C);
        var rstd = cache.Rstd.AsSpan(0, n);
        var q = cache.Q.AsSpan(0, n * QD);
        var att = cache.Att.AsSpan(0, n * QD);
        var lse = cache.Lse.AsSpan(0, NH * n);
        var gate = cache.Gate.AsSpan(0, n * H);
        var up = cache.Up.AsSpan(0, n * H);
        var hidden = cache.Hidden.AsSpan(0, n * H);
        var pos = cache.Positions.AsSpan(0, n);
        for (int i = 0; i < n; i++) pos[i] = past + i;

        // LongRoPE: the cache's capacity decides short or long factors for the whole sequence (llama.cpp decides by its
        // context size the same way), so cached keys never mix the two.
        _useLongRope = UsesLongRope(cache.Capacity);
        bool q8 = Q8DecodeActivations;   // few-row products only (MatMul decides); never in training
        Embedding_Forward(tokens, x, n);
        for (int l = 0; l < Layers.Length; l++)
        {
            var w = Layers[l];
            var kNew = cache.K[l].AsSpan(past * KD, n * KD);
            var vNew = cache.V[l].AsSpan(past * KD, n * KD);
            RmsNorm.Forward(x, w.InputNorm.Floats, xn, rstd, n, C, eps);
            if (w.Qkv != null)
            {
                var fused = cache.Fused.AsSpan(0, n * (QD + 2 * KD));   // phi3: [q | k | v] in one product, then split
                w.Qkv.Forward(xn, fused, n, false, [], 0, training: false, q8);
                SplitColumns(fused, n, q, QD, kNew, KD, vNew, KD);
            }
            else if (w.QNorm == null)
            {
                Linear.ForwardShared(xn, n, w.Q, q, w.K, kNew, w.V, vNew, q8);   // one parallel region for the three (decode)
            }
            else
            {
                var qRaw = cache.QRaw.AsSpan(0, n * QD);
                var kRaw = cache.KRaw.AsSpan(0, n * KD);
                Linear.ForwardShared(xn, n, w.Q, qRaw, w.K, kRaw, w.V, vNew, q8);
                RmsNorm.Forward(qRaw, w.QNorm.Floats, q, cache.RstdHeads.AsSpan(0, n * NH), n * NH, HS, eps);
                RmsNorm.Forward(kRaw, w.KNorm!.Floats, kNew, cache.RstdHeads.AsSpan(0, n * NKV), n * NKV, HS, eps);
            }
            if (w.UsesRope)
            {
                var rope = RopeOf(l);
                Core.Kernels.Rope.Forward(q, pos, rope, n, NH, HS);
                Core.Kernels.Rope.Forward(kNew, pos, rope, n, NKV, HS);
            }
            Attention.Forward(q, cache.K[l].AsSpan(0, total * KD), cache.V[l].AsSpan(0, total * KD), [], att, lse,
                1, n, total, NH, NKV, HS, c.AttentionScale, w.SlidingWindow, c.AttentionSoftCap);
            if (w.AttnOutNorm == null) w.O.Forward(att, x, n, true, [], 0, training: false, q8);
            else
            {
                var branch = cache.Branch.AsSpan(0, n * C);   // gemma: x += post_attention_layernorm(o_proj(att))
                w.O.Forward(att, branch, n, false, [], 0, training: false, q8);
                RmsNorm.Forward(branch, w.AttnOutNorm.Floats, xn, rstd, n, C, eps);
                System.Numerics.Tensors.TensorPrimitives.Add(x, xn, x);
            }
            RmsNorm.Forward(x, w.PostAttentionNorm.Floats, xn, rstd, n, C, eps);
            if (w.GateUp != null)
            {
                var fused = cache.Fused.AsSpan(0, n * 2 * H);   // phi3: [gate | up] in one product, then split
                w.GateUp.Forward(xn, fused, n, false, [], 0, training: false, q8);
                SplitColumns(fused, n, gate, H, up, H, [], 0);
            }
            else
            {
                Linear.ForwardShared(xn, n, w.Gate, gate, w.Up, up, q8Activations: q8);
            }
            GatedActivation(gate, up, hidden);
            if (w.FfnOutNorm == null) w.Down.Forward(hidden, x, n, true, [], 0, training: false, q8);
            else
            {
                var branch = cache.Branch.AsSpan(0, n * C);   // gemma: x += post_feedforward_layernorm(down_proj(h))
                w.Down.Forward(hidden, branch, n, false, [], 0, training: false, q8);
                RmsNorm.Forward(branch, w.FfnOutNorm.Floats, xn, rstd, n, C, eps);
                System.Numerics.Tensors.TensorPrimitives.Add(x, xn, x);
            }
        }
        var last = x.Slice((n - 1) * C, C);
        RmsNorm.Forward(last, FinalNorm.Floats, xn[..C], rstd[..1], 1, C, eps);
        MatMul.Forward(xn[..C], Output, cache.Logits, 1, q8Activations: q8);
        if (Config.LogitSoftCap > 0) SoftCap.Forward(cache.Logits, cache.Logits, Config.LogitSoftCap);   // gemma2's final_logit_softcapping
        cache.Length = total;
    }
}
