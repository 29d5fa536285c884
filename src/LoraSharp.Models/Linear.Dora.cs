// DoRA (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation") on a Linear, with PEFT's semantics
// (peft/tuners/lora/dora.py): the adapted weight is W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖, the norm taken per output
// row (the paper's "column" norm of Wᵀ) and DETACHED (paper §4.3: treated as a constant, no gradient through it).
// With g = m / ‖W + sBA‖ [N] and u = dropout(x) (u = x without dropout), the output is PEFT's
//     y = x·Wᵀ + b + (g − 1) ⊙ (u·Wᵀ) + g ⊙ (s·u·Aᵀ·Bᵀ)
// which without dropout is y = b + g ⊙ S with S = x·Wᵀ + s·x·Aᵀ·Bᵀ. The forward saves S (M×N floats per DoRA
// projection) for dm; the backward, with dyg = g ⊙ dy:
//     dm  += Σ_m dy ⊙ S / ‖·‖           dB += dygᵀ·(s·u·Aᵀ)          dA += (s·dyg·B)ᵀ·u
//     dx  += dyg·W + s·dyg·B·A                                  (no dropout: ONE base product, as plain LoRA)
//     dx  += dy·W + dropoutᵀ((g − 1) ⊙ dy·W + s·dyg·B·A)         (dropout: PEFT's second base product)
// The row norms are computed once per forward without forming W + sBA:
//     ‖W_n + s(BA)_n‖² = ‖W_n‖² + 2s·Σ_r B[n,r]·(A·Wᵀ)[r,n] + s²·B_n·(A·Aᵀ)·B_nᵀ
// with ‖W_n‖² cached (the base is frozen) and A·Wᵀ one packed product of R rows: O(R·N·K), no N×K temporary.
// Not here: several DoRA adapters on one projection (PEFT sums their (g_i − 1)·x·Wᵀ terms; refused here with a
// clear error), DoRA with full fine-tuning (meaningless), and merging (Training's AdapterMerger).
// Legend: M rows (tokens), K in features, N out features, R rank.
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoraSharp.Core.Diagnostics;
using LoraSharp.Core.Kernels;
using LoraSharp.Models.Lora;

namespace LoraSharp.Models;

public sealed partial class Linear
{
    private double[]? _rowNormSq;   // ‖W_n‖² [N] of the frozen weight in double; dropped by Repack

    private bool UsesDora => !AdaptersDisabled && DoraIndex() >= 0;

    /// <summary>
    /// Bytes DoRA's buffers hold on this projection now: per DoRA adapter the saved S (M×N floats, the largest
    /// micro-batch so far), norms and scale (2N floats), the dm sum (N doubles) and the row-norm workspace; and the
    /// cached ‖W_n‖² (N doubles). Not the magnitudes and their gradients (those are trainable parameters).
    /// <c>LoraMemoryEstimate.DoraBufferBytes</c> predicts this.
    /// </summary>
    public long DoraBufferBytes
    {
        get
        {
            long bytes = (_rowNormSq?.Length ?? 0) * 8L;
            foreach (var a in _adapters)
                if (a.IsDora) bytes += 4L * (a.DoraNorm.Length + a.DoraScale.Length + a.SavedDoraS.Length + a.DoraWork.Length) + 8L * a.DoraSum.Length;
            return bytes;
        }
    }

    private int DoraIndex()
    {
        int found = -1;
        for (int i = 0; i < _adapters.Count; i++)
            if (_adapters[i].IsDora)
            {
                if (found >= 0)
                    throw new Core.UserErrorException($"{Name}: two DoRA adapters ('{_adapters[found].AdapterName}', '{_adapters[i].AdapterName}') " +
                                                        "are attached; at most one DoRA adapter per projection is supported. Merge one of them first.");
                found = i;
            }
        return found;
    }

    private void CheckDoraAllowed(LoraAdapter adapter)
    {
        if (Weight != null)
            throw new Core.UserErrorException($"{Name}: a DoRA adapter cannot be attached to a fully trainable weight (full_fine_tuning); use one or the other.");
        foreach (var a in _adapters)
            if (a.IsDora)
                throw new Core.UserErrorException($"{Name}: DoRA adapter '{a.AdapterName}' is already attached; at most one DoRA adapter per projection " +
                                                    $"is supported (cannot add '{adapter.AdapterName}'). Merge one of them first.");
    }

    /// <summary>
    /// Row norms ‖W + s·B·A‖ [N] of the base weight adapted by <paramref name="adapter"/> (any adapter of this
    /// projection's shape; its magnitude is not used): DoRA's detached norm, and PEFT's initial magnitude.
    /// </summary>
    public void DoraRowNorms(LoraAdapter adapter, Span<float> norms)
    {
        int N = OutFeatures, K = InFeatures, R = adapter.Rank;
        if (norms.Length < N) throw new ArgumentException($"{Name}: DoraRowNorms needs {N} floats, got {norms.Length}.");
        if (adapter.InFeatures != K || adapter.OutFeatures != N)
            throw new ArgumentException($"{Name}: the adapter's shape [{adapter.OutFeatures}, {adapter.InFeatures}] is not the weight's [{N}, {K}].");
        var wsq = RowNormSq();
        var work = adapter.DoraWorkspace(R * N + R * R + N * R);
        var aw = work[..(R * N)];                  // A·Wᵀ [R, N]
        var aa = work.Slice(R * N, R * R);         // A·Aᵀ [R, R]
        var bg = work.Slice(R * N + R * R, N * R); // B·(A·Aᵀ) [N, R] (A·Aᵀ is symmetric)
        MatMul.Forward(adapter.A.Floats, Packed, aw, R);
        MatMul.Forward(adapter.A.Floats, adapter.A.Floats, aa, R, K, R);
        MatMul.Forward(adapter.B.Floats, aa, bg, N, R, R);
        double s = adapter.Scale;
        var b = adapter.B.Floats;
        for (int n = 0; n < N; n++)
        {
            double cross = 0, quad = 0;
            for (int r = 0; r < R; r++)
            {
                cross += (double)b[n * R + r] * aw[r * N + n];
                quad += (double)b[n * R + r] * bg[n * R + r];
            }
            norms[n] = (float)Math.Sqrt(Math.Max(0, wsq[n] + 2 * s * cross + s * s * quad));
        }
    }

    // ‖W_n‖² of every row, read through the packed weight's own row decoder (any storage type), 32 rows at a time.
    private double[] RowNormSq()
    {
        if (_rowNormSq != null) return _rowNormSq;
        int N = OutFeatures, K = InFeatures;
        const int chunk = 32;
        var d = new double[N];
        var rows = new float[chunk * K];
        var ids = new int[chunk];
        for (int n0 = 0; n0 < N; n0 += chunk)
        {
            int c = Math.Min(chunk, N - n0);
            for (int i = 0; i < c; i++) ids[i] = n0 + i;
            Packed.GatherRows(ids.AsSpan(0, c), rows);
            for (int i = 0; i < c; i++)
            {
                double sum = 0;
                foreach (float v in rows.AsSpan(i * K, K)) sum += (double)v * v;
                d[n0 + i] = sum;
            }
        }
        return _rowNormSq = d;
    }

    // Computes and saves ‖W + sBA‖ and g = m / ‖·‖ for this forward.
    private void UpdateDoraScale(LoraAdapter a)
    {
        int N = OutFeatures;
        if (a.DoraNorm.Length != N) { a.DoraNorm = new float[N]; a.DoraScale = new float[N]; }
        DoraRowNorms(a, a.DoraNorm);
        TensorPrimitives.Divide(a.Magnitude!.Floats, a.DoraNorm, a.DoraScale);
    }

    private void ForwardDora(int index, ReadOnlySpan<float> x, Span<float> y, int M, bool accumulate, Span<float> scratch, ulong dropoutSeed, bool training)
    {
        var a = _adapters[index];
        int K = InFeatures, N = OutFeatures, R = a.Rank;
        long t0 = StepProfile.Start();
        UpdateDoraScale(a);
        var g = a.DoraScale.AsSpan(0, N);
        var S = a.DoraS(M, N);
        var sz = a.ScaledZ(M);
        a.DroppedInForward = training && a.Dropout > 0;
        StepProfile.Stop(StepPhase.LoraForward, t0);
        if (!a.DroppedInForward)
        {
            t0 = StepProfile.Start();
            MatMul.Forward(x, Packed, S, M);                                  // S = x·Wᵀ
            StepProfile.Stop(StepPhase.ProjForward, t0);
            t0 = StepProfile.Start();
            MatMul.Forward(x, a.A.Floats, sz, M, K, R);
            TensorPrimitives.Multiply(sz, a.Scale, sz);
            MatMul.Forward(sz, a.B.Floats, S, M, R, N, accumulate: true);     // S += s·x·Aᵀ·Bᵀ
            DoraRows.RowScale(S, g, y[..(M * N)], M, N, accumulate);       // y (+)= g ⊙ S, rows in parallel
            StepProfile.Stop(StepPhase.LoraForward, t0);
        }
        else
        {
            t0 = StepProfile.Start();
            MatMul.Forward(x, Packed, y, M, accumulate);                      // y (+)= x·Wᵀ
            a.DropoutSeed = dropoutSeed ^ ((ulong)(index + 1) * 0x9E3779B97F4A7C15UL);   // as plain adapters (Linear.AddBiasAndAdapters)
            a.DropoutOffset = 0;
            var u = scratch[..(M * K)];
            Dropout.Forward(x[..(M * K)], u, a.Dropout, a.DropoutSeed, a.DropoutOffset);
            MatMul.Forward(u, Packed, S, M);                                  // S = u·Wᵀ
            StepProfile.Stop(StepPhase.ProjForward, t0);
            t0 = StepProfile.Start();
            var work = a.DoraWorkspace(N + N * R);
            var gm1 = work[..N];
            var bg = work.Slice(N, N * R);
            TensorPrimitives.Subtract(g, 1f, gm1);
            DoraRows.RowScale(S, gm1, y[..(M * N)], M, N, accumulate: true);   // y += (g − 1) ⊙ u·Wᵀ
            var b = a.B.Floats;
            for (int n = 0; n < N; n++) TensorPrimitives.Multiply(b.Slice(n * R, R), g[n], bg.Slice(n * R, R));
            MatMul.Forward(u, a.A.Floats, sz, M, K, R);
            TensorPrimitives.Multiply(sz, a.Scale, sz);
            MatMul.Forward(sz, bg, y, M, R, N, accumulate: true);             // y += g ⊙ (s·u·Aᵀ·Bᵀ)
            MatMul.Forward(sz, b, S, M, R, N, accumulate: true);              // S = u·Wᵀ + s·u·Aᵀ·Bᵀ
            StepProfile.Stop(StepPhase.LoraForward, t0);
        }
        t0 = StepProfile.Start();
        AddBiasAndAdapters(x, y, M, scratch, dropoutSeed, training, fused: -1);   // bias and any plain adapters
        StepProfile.Stop(StepPhase.LoraForward, t0);
    }

    private void BackwardDora(LoraAdapter a, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int M, Span<float> scratch)
    {
        int K = InFeatures, N = OutFeatures, R = a.Rank;
        bool needDx = !dx.IsEmpty;
        if (!needDx && !a.Trainable) return;
        var g = a.DoraScale.AsSpan(0, N);
        var S = a.DoraS(M, N);
        long t0 = StepProfile.Start();
        // dm[n] += Σ_m dy[m,n]·S[m,n] / ‖·‖[n]: float partial sums over 64-row blocks (in parallel), added up in double
        // in block order; the same pass turns S's buffer into dyg = g ⊙ dy (S is not needed any more).
        int blocks = DoraRows.Blocks(M);
        var partials = a.Trainable ? a.DoraWorkspace(blocks * N) : [];
        DoraRows.MagnitudeGradRows(dy, S, g, partials, M, N);
        var dyg = S;
        if (a.Trainable)
        {
            if (a.DoraSum.Length != N) a.DoraSum = new double[N];
            var sum = a.DoraSum;
            Array.Clear(sum);
            for (int b = 0; b < blocks; b++)
            {
                var p = partials.Slice(b * N, N);
                for (int n = 0; n < N; n++) sum[n] += p[n];
            }
            var dm = a.GradMagnitude!.Floats;
            for (int n = 0; n < N; n++) dm[n] += (float)(sum[n] / a.DoraNorm[n]);
        }
        StepProfile.Stop(StepPhase.LoraBackward, t0);

        bool dropped = a.DroppedInForward;
        t0 = StepProfile.Start();
        if (needDx) MatMul.BackwardInput(dropped ? dy : dyg, Packed, dx, M);   // dx += dyg·W (dy·W with dropout: x's own path)
        StepProfile.Stop(StepPhase.ProjBackward, t0);

        t0 = StepProfile.Start();
        var dz = scratch[..(M * R)];
        MatMul.BackwardInput(dyg, a.B.Floats, dz, M, N, R, accumulate: false);   // dz = dyg·B
        TensorPrimitives.Multiply(dz, a.Scale, dz);
        var rest = scratch[(M * R)..];
        ReadOnlySpan<float> u = x;
        if (dropped)
        {
            var drop = rest[..(M * K)];
            Dropout.Forward(x[..(M * K)], drop, a.Dropout, a.DropoutSeed, a.DropoutOffset);   // recompute, not stored
            u = drop;
        }
        if (a.Trainable)
        {
            MatMul.BackwardWeight(dyg, a.ScaledZ(M), a.GradB!.Floats, M, N, R);   // dB += dygᵀ·(s·z)
            MatMul.BackwardWeight(dz, u, a.GradA!.Floats, M, R, K);               // dA += dzᵀ·u
        }
        if (needDx)
        {
            if (!dropped)
            {
                MatMul.BackwardInput(dz, a.A.Floats, dx, M, R, K);               // dx += dz·A
            }
            else
            {
                // du = ((g − 1) ⊙ dy)·W + dz·A, then through the dropout mask into dx.
                var gm1 = a.DoraWorkspace(N);
                TensorPrimitives.Subtract(g, 1f, gm1);
                DoraRows.RowScale(dy, gm1, S, M, N, accumulate: false);
                var du = rest[..(M * K)];
                du.Clear();
                MatMul.BackwardInput(S, Packed, du, M);
                MatMul.BackwardInput(dz, a.A.Floats, du, M, R, K);
                Dropout.Backward(du, dx[..(M * K)], a.Dropout, a.DropoutSeed, a.DropoutOffset);
            }
        }
        StepProfile.Stop(StepPhase.LoraBackward, t0);
    }
}
