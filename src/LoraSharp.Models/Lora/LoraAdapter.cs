// One LoRA update on one linear layer: y += scale · (dropout(x) · Aᵀ) · Bᵀ, A [R, K] and B [N, R] in f32.
// With DoRA (Liu et al. 2024) it also holds the magnitude m [N]: the layer's weight becomes m ⊙ (W + sBA) / ‖W + sBA‖
// (row norms, detached), computed by Linear. Holds its weights, gradients and what the forward saved for the
// backward (the scaled low-rank activation; with DoRA the row scale m/‖·‖ and the pre-scale output).
// Deliberately knows nothing of files or PEFT names: Training maps it to PEFT keys.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Models.Lora;

/// <summary>A LoRA adapter attached to one <see cref="Linear"/>.</summary>
public sealed class LoraAdapter : IDisposable
{
    /// <summary>Creates an adapter with zero A and B; callers initialise them (<see cref="LoraInit"/>).</summary>
    public LoraAdapter(string adapterName, int rank, int inFeatures, int outFeatures, float scale, float dropout, bool trainable)
    {
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), rank, "LoRA rank must be positive.");
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "LoRA dropout must be in [0, 1).");
        AdapterName = adapterName;
        Rank = rank;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Scale = scale;
        Dropout = dropout;
        A = Tensor.Zeros(DType.F32, rank, inFeatures);
        B = Tensor.Zeros(DType.F32, outFeatures, rank);
        Trainable = trainable;
        if (trainable)
        {
            GradA = Tensor.Zeros(DType.F32, rank, inFeatures);
            GradB = Tensor.Zeros(DType.F32, outFeatures, rank);
        }
    }

    /// <summary>Name of the adapter this belongs to ("default" as in PEFT).</summary>
    public string AdapterName { get; }

    /// <summary>Rank R.</summary>
    public int Rank { get; }

    /// <summary>In features K of the wrapped linear.</summary>
    public int InFeatures { get; }

    /// <summary>Out features N of the wrapped linear.</summary>
    public int OutFeatures { get; }

    /// <summary>alpha / r (or alpha / √r with rsLoRA), times any user scale applied at inference.</summary>
    public float Scale { get; set; }

    /// <summary>Dropout probability on the LoRA input path.</summary>
    public float Dropout { get; }

    /// <summary>Whether gradients are computed for A and B.</summary>
    public bool Trainable { get; }

    /// <summary>lora_A [R, K].</summary>
    public Tensor A { get; }

    /// <summary>lora_B [N, R].</summary>
    public Tensor B { get; }

    /// <summary>dL/dA [R, K] (null when frozen).</summary>
    public Tensor? GradA { get; }

    /// <summary>dL/dB [N, R] (null when frozen).</summary>
    public Tensor? GradB { get; }

    /// <summary>DoRA's lora_magnitude_vector m [N] (null for plain LoRA).</summary>
    public Tensor? Magnitude { get; private set; }

    /// <summary>dL/dm [N] (null when frozen or plain LoRA).</summary>
    public Tensor? GradMagnitude { get; private set; }

    /// <summary>True for a DoRA adapter (it has a magnitude vector).</summary>
    public bool IsDora => Magnitude != null;

    /// <summary>
    /// Makes this a DoRA adapter with magnitude <paramref name="magnitude"/> [N] (PEFT initialises it to the row
    /// norms ‖W + sBA‖, see <see cref="Linear.DoraRowNorms"/>).
    /// </summary>
    public void EnableDora(ReadOnlySpan<float> magnitude)
    {
        if (magnitude.Length != OutFeatures)
            throw new ArgumentException($"DoRA magnitude has {magnitude.Length} values but the layer has {OutFeatures} out features.");
        Magnitude ??= Tensor.Zeros(DType.F32, OutFeatures);
        magnitude.CopyTo(Magnitude.Floats);
        if (Trainable) GradMagnitude ??= Tensor.Zeros(DType.F32, OutFeatures);
    }

    // DoRA, saved by the forward: the row norms ‖W + sBA‖ [N] and the row scale g = m / ‖·‖ [N] (both f32), and
    // S = u·Wᵀ + s·u·Aᵀ·Bᵀ (M, N), the output before the row scale (u = dropout(x)); the backward reuses S's buffer.
    internal float[] DoraNorm = [];
    internal float[] DoraScale = [];
    internal float[] SavedDoraS = [];

    internal float[] DoraWork = [];
    internal double[] DoraSum = [];

    internal Span<float> DoraWorkspace(int length)
    {
        if (DoraWork.Length < length) DoraWork = new float[length];
        return DoraWork.AsSpan(0, length);
    }

    internal Span<float> DoraS(int M, int N)
    {
        if (SavedDoraS.Length < M * N) SavedDoraS = new float[M * N];
        return SavedDoraS.AsSpan(0, M * N);
    }

    // Saved by the forward for the backward: scale · dropout(x) · Aᵀ, (M, R); and the dropout stream used.
    internal float[] SavedScaledZ = [];
    internal ulong DropoutSeed;
    internal long DropoutOffset;
    internal bool DroppedInForward;

    // The forward's dropout keep bits, (M, LoraRows.KeepWords(K)): M·K/8 bytes, read by the backward instead of
    // computing the mask again (LoraRows).
    internal uint[] SavedKeep = [];

    internal Span<uint> Keep(int M, int K)
    {
        int n = M * Core.Kernels.LoraRows.KeepWords(K);
        if (SavedKeep.Length < n) SavedKeep = new uint[n];
        return SavedKeep.AsSpan(0, n);
    }

    internal Span<float> ScaledZ(int M)
    {
        if (SavedScaledZ.Length < M * Rank) SavedScaledZ = new float[M * Rank];
        return SavedScaledZ.AsSpan(0, M * Rank);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        GradA?.Dispose();
        GradB?.Dispose();
        Magnitude?.Dispose();
        GradMagnitude?.Dispose();
    }
}
