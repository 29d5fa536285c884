// A linear projection y = x·Wᵀ + b of the Llama model, and THE seam where LoRA plugs in: every adapter attached
// to a Linear adds scale·(dropout(x)·Aᵀ)·Bᵀ in the forward and gets its gradients in the backward.
// The frozen base weight is packed once; in full fine-tuning mode the weight is trainable and repacked after
// each optimizer step. A DoRA adapter (at most one per projection) changes the base product too: Linear.Dora.cs.
// Legend: M rows (tokens), K in features, N out features, R LoRA rank.
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using LoraSharp.Core.Diagnostics;
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Lora;

namespace LoraSharp.Models;

/// <summary>A projection with optional bias and any number of LoRA adapters.</summary>
public sealed partial class Linear : IDisposable
{
    private readonly List<LoraAdapter> _adapters = [];

    /// <summary>Creates a frozen linear from a packed weight.</summary>
    public Linear(string name, PackedWeight weight, float[]? bias)
    {
        Name = name;
        Packed = weight;
        Bias = bias;
        if (bias != null && bias.Length != weight.N)
            throw new ArgumentException($"{name}: bias has {bias.Length} elements but the weight has {weight.N} rows.");
    }

    /// <summary>HF module name, e.g. model.layers.3.self_attn.q_proj.</summary>
    public string Name { get; }

    /// <summary>In features K.</summary>
    public int InFeatures => Packed.K;

    /// <summary>Out features N.</summary>
    public int OutFeatures => Packed.N;

    /// <summary>The packed base weight used by the matmuls.</summary>
    public PackedWeight Packed { get; private set; }

    /// <summary>Bias [N] or null.</summary>
    public float[]? Bias { get; }

    /// <summary>Full fine-tuning: the f32 weight [N, K] that the optimizer updates (null when frozen).</summary>
    public Tensor? Weight { get; private set; }

    /// <summary>Full fine-tuning: dL/dW [N, K].</summary>
    public Tensor? GradWeight { get; private set; }

    /// <summary>Adapters attached to this projection, applied in order.</summary>
    public IReadOnlyList<LoraAdapter> Adapters => _adapters;

    /// <summary>The largest rank of the attached adapters (0 without any).</summary>
    public int MaxAdapterRank
    {
        get
        {
            int r = 0;
            for (int i = 0; i < _adapters.Count; i++) r = Math.Max(r, _adapters[i].Rank);
            return r;
        }
    }

    /// <summary>
    /// Adapters switched off: the forward is the base projection alone (DPO's reference model is the base with the
    /// adapter off, so no second copy of the weights is needed). The backward refuses to run while they are off.
    /// </summary>
    public bool AdaptersDisabled { get; set; }

    /// <summary>True when the backward must produce gradients for something owned here.</summary>
    public bool HasTrainable => Weight != null || _adapters.Exists(a => a.Trainable);

    /// <summary>Attaches an adapter whose shapes must match this projection.</summary>
    public void Attach(LoraAdapter adapter)
    {
        if (adapter.InFeatures != InFeatures || adapter.OutFeatures != OutFeatures)
            throw new ArgumentException(
                $"{Name}: adapter '{adapter.AdapterName}' has A [{adapter.Rank}, {adapter.InFeatures}] and B [{adapter.OutFeatures}, {adapter.Rank}] " +
                $"but the weight is [{OutFeatures}, {InFeatures}]. The adapter was made for another base model.");
        if (adapter.IsDora) CheckDoraAllowed(adapter);
        _adapters.Add(adapter);
    }

    /// <summary>Removes every adapter named <paramref name="adapterName"/>.</summary>
    public void Detach(string adapterName) => _adapters.RemoveAll(a => a.AdapterName == adapterName);

    /// <summary>Makes the base weight trainable (full fine-tuning) from its f32 values [N, K].</summary>
    public void MakeTrainable(ReadOnlySpan<float> weight)
    {
        Weight = Tensor.FromFloats(weight, OutFeatures, InFeatures);
        GradWeight = Tensor.Zeros(DType.F32, OutFeatures, InFeatures);
    }

    /// <summary>Re-packs <see cref="Weight"/> after the optimizer changed it.</summary>
    public void Repack()
    {
        if (Weight != null) Packed = PackedWeight.FromF32(Weight.Floats, OutFeatures, InFeatures);
        _rowNormSq = null;
    }

    /// <summary>
    /// y[M,N] = x[M,K]·Wᵀ + b + Σ adapters (or y += that when <paramref name="accumulate"/>).
    /// Saves what the adapters' backward needs. <paramref name="scratch"/> holds at least M·K floats when a DoRA
    /// adapter has dropout (plain adapters' dropout is fused into LoraRows and needs none). <paramref name="q8Activations"/> (inference only): see <see cref="MatMul.Forward(ReadOnlySpan{float}, PackedWeight, Span{float}, int, bool, bool)"/>.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int M, bool accumulate, Span<float> scratch, ulong dropoutSeed, bool training,
        bool q8Activations = false)
    {
        if (!AdaptersDisabled && DoraIndex() is int dora and >= 0)
        {
            ForwardDora(dora, x, y, M, accumulate, scratch, dropoutSeed, training);
            return;
        }
        // The first plain adapter's (s·z)·Bᵀ rides on the frozen product's output tiles (MatMul's low-rank term, the
        // same bits as adding it after), so z comes first. Not with a bias: y = (x·Wᵀ + b) + terms, in that order.
        int fused = AdaptersDisabled || Bias != null ? -1 : _adapters.FindIndex(static a => !a.IsDora);
        long t0 = StepProfile.Start();
        if (fused >= 0) ProjectAdapter(fused, x, M, dropoutSeed, training);
        StepProfile.Stop(StepPhase.LoraForward, t0);
        t0 = StepProfile.Start();
        bool q8 = q8Activations && !training;
        if (fused >= 0) MatMul.Forward(x, Packed, y, M, accumulate, q8, _adapters[fused].ScaledZ(M), _adapters[fused].B.Floats, _adapters[fused].Rank);
        else MatMul.Forward(x, Packed, y, M, accumulate, q8);
        StepProfile.Stop(StepPhase.ProjForward, t0);
        t0 = StepProfile.Start();
        AddBiasAndAdapters(x, y, M, scratch, dropoutSeed, training, fused);
        StepProfile.Stop(StepPhase.LoraForward, t0);
    }

    /// <summary>
    /// Inference forward of two or three linears that read the same input (decode's q/k/v, gate/up): y = x·Wᵀ + b +
    /// Σ adapters for each, with the frozen products run together (<see cref="MatMul.ForwardShared"/>). Equals
    /// separate <see cref="Forward"/> calls with <c>training: false</c> (and the same <paramref name="q8Activations"/>), bit for bit.
    /// </summary>
    public static void ForwardShared(ReadOnlySpan<float> x, int M, Linear a, Span<float> ya, Linear b, Span<float> yb, Linear? c = null, Span<float> yc = default,
        bool q8Activations = false)
    {
        if (a.UsesDora || b.UsesDora || (c != null && c.UsesDora))
        {
            // DoRA scales the base product per row: each projection runs its own forward.
            a.Forward(x, ya, M, false, [], 0, training: false);
            b.Forward(x, yb, M, false, [], 0, training: false);
            c?.Forward(x, yc, M, false, [], 0, training: false);
            return;
        }
        MatMul.ForwardShared(x, M, a.Packed, ya, b.Packed, yb, c?.Packed, yc, q8Activations);
        a.AddBiasAndAdapters(x, ya, M, [], 0, training: false, fused: -1);
        b.AddBiasAndAdapters(x, yb, M, [], 0, training: false, fused: -1);
        c?.AddBiasAndAdapters(x, yc, M, [], 0, training: false, fused: -1);
    }

    // Adds the bias and every plain adapter's term except <paramref name="fused"/>'s (already in y).
    private void AddBiasAndAdapters(ReadOnlySpan<float> x, Span<float> y, int M, Span<float> scratch, ulong dropoutSeed, bool training, int fused)
    {
        int N = OutFeatures;
        if (Bias != null)
            for (int m = 0; m < M; m++) TensorPrimitives.Add(y.Slice(m * N, N), Bias, y.Slice(m * N, N));
        if (AdaptersDisabled) return;
        for (int i = 0; i < _adapters.Count; i++)
        {
            var a = _adapters[i];
            if (a.IsDora || i == fused) continue;   // DoRA: added by ForwardDora
            ProjectAdapter(i, x, M, dropoutSeed, training);
            MatMul.Forward(a.ScaledZ(M), a.B.Floats, y, M, a.Rank, N, accumulate: true);
        }
    }

    // Adapter i's s·z = s·dropout(x)·Aᵀ into its saved z; with dropout, the keep bits its backward reads.
    private void ProjectAdapter(int i, ReadOnlySpan<float> x, int M, ulong dropoutSeed, bool training)
    {
        int K = InFeatures;
        var a = _adapters[i];
        a.DroppedInForward = training && a.Dropout > 0;
        var sz = a.ScaledZ(M);
        if (a.DroppedInForward)
        {
            // One independent mask stream per adapter (PEFT draws a separate dropout per module).
            a.DropoutSeed = dropoutSeed ^ ((ulong)(i + 1) * 0x9E3779B97F4A7C15UL);
            a.DropoutOffset = 0;
            LoraRows.Project(x[..(M * K)], a.A.Floats, sz, M, K, a.Rank, a.Scale, a.Dropout, a.DropoutSeed, a.DropoutOffset, a.Keep(M, K));
        }
        else
        {
            LoraRows.Project(x[..(M * K)], a.A.Floats, sz, M, K, a.Rank, a.Scale);
        }
    }

    /// <summary>
    /// Backward of <see cref="Forward"/>: dx[M,K] += dy·W (+ adapters) when <paramref name="dx"/> is not empty;
    /// adapter and (full fine-tuning) weight gradients += their parts. <paramref name="x"/> is the forward input.
    /// <paramref name="scratch"/> holds at least M·R floats (R the largest rank; M·K + M·R with a DoRA adapter).
    /// </summary>
    public void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int M, Span<float> scratch)
    {
        int K = InFeatures, N = OutFeatures;
        bool needDx = !dx.IsEmpty;
        if (AdaptersDisabled && _adapters.Exists(a => a.Trainable))
            throw new InvalidOperationException($"{Name}: backward with the adapters switched off; switch them on before training.");
        long t0;
        if (DoraIndex() is int dora and >= 0)
        {
            BackwardDora(_adapters[dora], dy, x, dx, M, scratch);   // the base input gradient with DoRA's row scale
        }
        else
        {
            t0 = StepProfile.Start();
            if (needDx) MatMul.BackwardInput(dy, Packed, dx, M);
            if (GradWeight != null) MatMul.BackwardWeight(dy, x, GradWeight.Floats, M, N, K);
            StepProfile.Stop(StepPhase.ProjBackward, t0);
        }
        t0 = StepProfile.Start();
        BackwardAdapters(dy, x, dx, M, scratch);
        StepProfile.Stop(StepPhase.LoraBackward, t0);
    }

    [ThreadStatic] private static float[]? t_bt, t_dbt;   // Bᵀ and dBᵀ [R, N] in an adapter's backward, per driving thread

    // w [N, R] as [R, N] in a per-thread buffer (the B side's row products read B's columns as rows).
    private static Span<float> Transposed(ReadOnlySpan<float> w, int N, int R, ref float[]? buffer)
    {
        if (buffer == null || buffer.Length < N * R) buffer = new float[N * R];
        var t = buffer.AsSpan(0, N * R);
        for (int n = 0; n < N; n++)
            for (int r = 0; r < R; r++) t[r * N + n] = w[n * R + r];
        return t;
    }

    private void BackwardAdapters(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int M, Span<float> scratch)
    {
        int K = InFeatures, N = OutFeatures;
        bool needDx = !dx.IsEmpty;
        foreach (var a in _adapters)
        {
            if (a.IsDora) continue;   // done by BackwardDora
            if (!a.Trainable && !needDx) continue;
            int R = a.Rank;
            var dz = scratch.Slice(0, M * R);
            LoraRows.Project(dy[..(M * N)], Transposed(a.B.Floats, N, R, ref t_bt), dz, M, N, R, a.Scale);   // dz = s·dy·B
            if (a.Trainable)
            {
                // dB += dyᵀ·(s·z), as dBᵀ [R, N] += Σ_m (s·z)[m, r]·dy[m, n]
                var dbt = Transposed(a.GradB!.Floats, N, R, ref t_dbt);
                LoraRows.ProjectBackward(a.ScaledZ(M), dy[..(M * N)], [], 0, [], dbt, [], M, N, R);
                var gb = a.GradB.Floats;
                for (int n = 0; n < N; n++)
                    for (int r = 0; r < R; r++) gb[n * R + r] = dbt[r * N + n];
            }
            // dA += dzᵀ·u and dx += dropout'(dz·A), with the forward's keep bits
            bool dropped = a.DroppedInForward;
            LoraRows.ProjectBackward(dz, x[..(M * K)], dropped ? a.Keep(M, K) : [], dropped ? a.Dropout : 0, a.A.Floats,
                a.Trainable ? a.GradA!.Floats : [], needDx ? dx[..(M * K)] : [], M, K, R);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var a in _adapters) a.Dispose();
        Weight?.Dispose();
        GradWeight?.Dispose();
    }
}
