// One module's LoRA factors held in memory, independent of any model: A [R, K], B [N, R] (f32, PEFT layout) and
// the scale s applied to B·A (alpha/r, alpha/√r with rsLoRA, times any user scale), so ΔW = s·B·A [N, K].
// A DoRA module also holds its magnitude m [N]: the adapted weight is then m ⊙ (W + s·B·A) / ‖W + s·B·A‖ (rows),
// which depends on W, so ΔW alone does not describe it (Delta refuses; merge with ApplyDoraToRow).
// Not here: files (LoraWeights reads and writes them) and the forward pass (LoraAdapter on a Linear does that).
namespace LoraSharp.Training.Adapters;

/// <summary>LoRA factors of one linear module.</summary>
public sealed class LoraModuleWeights
{
    /// <summary>Creates the factors; A holds R·K and B holds N·R values.</summary>
    public LoraModuleWeights(string module, int rank, int inFeatures, int outFeatures, float[] a, float[] b, double scale)
    {
        if (rank <= 0) throw new ArgumentException($"{module}: LoRA rank must be positive (is {rank}).");
        if (a.Length != (long)rank * inFeatures)
            throw new ArgumentException($"{module}: lora_A has {a.Length} values but its shape is [{rank}, {inFeatures}].");
        if (b.Length != (long)outFeatures * rank)
            throw new ArgumentException($"{module}: lora_B has {b.Length} values but its shape is [{outFeatures}, {rank}].");
        Module = module;
        Rank = rank;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        A = a;
        B = b;
        Scale = scale;
    }

    /// <summary>HF module name, e.g. model.layers.3.self_attn.q_proj.</summary>
    public string Module { get; }

    /// <summary>Rank R.</summary>
    public int Rank { get; }

    /// <summary>In features K.</summary>
    public int InFeatures { get; }

    /// <summary>Out features N.</summary>
    public int OutFeatures { get; }

    /// <summary>lora_A [R, K] row-major.</summary>
    public float[] A { get; }

    /// <summary>lora_B [N, R] row-major.</summary>
    public float[] B { get; }

    /// <summary>Scale s of ΔW = s·B·A.</summary>
    public double Scale { get; }

    /// <summary>DoRA's lora_magnitude_vector [N], or null for plain LoRA.</summary>
    public float[]? Magnitude
    {
        get => _magnitude;
        init
        {
            if (value != null && value.Length != OutFeatures)
                throw new ArgumentException($"{Module}: lora_magnitude_vector has {value.Length} values but the module has {OutFeatures} out features.");
            _magnitude = value;
        }
    }

    private readonly float[]? _magnitude;

    /// <summary>True for a DoRA module.</summary>
    public bool IsDora => _magnitude != null;

    /// <summary>
    /// DoRA's last merge step on row n of the weight, which already holds W + factor·s·B·A: row *= m[n] / ‖row‖
    /// (PEFT's merge: dora_factor = magnitude / ‖W + ΔW‖, computed in double).
    /// </summary>
    public void ApplyDoraToRow(int n, Span<double> row)
    {
        if (_magnitude == null) return;
        double sq = 0;
        foreach (double v in row) sq += v * v;
        double f = _magnitude[n] / Math.Sqrt(sq);
        for (int k = 0; k < row.Length; k++) row[k] *= f;
    }

    /// <summary>Throws a clear error for a DoRA module in a tool that only understands ΔW = s·B·A.</summary>
    public void RequirePlainLora(string tool)
    {
        if (IsDora)
            throw new Core.UserErrorException($"{Module} is a DoRA module (it has lora_magnitude_vector): {tool} works on plain LoRA adapters, whose " +
                                            "change is s·B·A alone. Merge the DoRA adapter into the base (lorasharp merge), or convert it to a plain " +
                                            "LoRA first (lorasharp export --to-lora --format peft, which reports the conversion error).");
    }

    /// <summary>The HF weight this module adapts (Module + ".weight").</summary>
    public string WeightName => Module + ".weight";

    /// <summary>
    /// w[N, K] += factor·s·B·A, computed in double per element: each row is accumulated in double from
    /// (double)w and the products, then rounded once by the caller. <paramref name="row"/> is row n of w, K doubles.
    /// </summary>
    public void AddDeltaToRow(int n, Span<double> row, double factor)
    {
        int K = InFeatures, R = Rank;
        double s = factor * Scale;
        var ad = ADouble();
        for (int r = 0; r < R; r++)
        {
            double b = s * B[n * R + r];
            if (b == 0) continue;
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ad.AsSpan(r * K, K), b, row, row);
        }
    }

    private double[]? _aDouble;

    // A widened to double once, so the merge's inner loop is a vectorised multiply-add in double. Merge threads may
    // race to create it; each creates the same values and the reference assignment is atomic.
    private double[] ADouble()
    {
        if (_aDouble == null)
        {
            var d = new double[A.Length];
            for (int i = 0; i < d.Length; i++) d[i] = A[i];
            _aDouble = d;
        }
        return _aDouble;
    }

    /// <summary>ΔW = s·B·A as a dense [N, K] double matrix (for combining and tests; O(N·K) memory).</summary>
    public double[] Delta(double factor = 1.0)
    {
        RequirePlainLora("ΔW = s·B·A");
        var d = new double[(long)OutFeatures * InFeatures];
        for (int n = 0; n < OutFeatures; n++) AddDeltaToRow(n, d.AsSpan(n * InFeatures, InFeatures), factor);
        return d;
    }

    /// <summary>Throws naming the module and factor when a value is NaN or infinite.</summary>
    public void CheckFinite(string source)
    {
        for (int i = 0; i < A.Length; i++)
            if (!float.IsFinite(A[i])) throw new Formats.ModelFormatException(source, null, $"{Module}.lora_A holds a non-finite value ({A[i]}) at row {i / InFeatures}, column {i % InFeatures}.");
        for (int i = 0; i < B.Length; i++)
            if (!float.IsFinite(B[i])) throw new Formats.ModelFormatException(source, null, $"{Module}.lora_B holds a non-finite value ({B[i]}) at row {i / Rank}, column {i % Rank}.");
        if (!double.IsFinite(Scale)) throw new Formats.ModelFormatException(source, null, $"{Module} has a non-finite scale ({Scale}).");
        if (_magnitude != null)
            for (int i = 0; i < _magnitude.Length; i++)
                if (!float.IsFinite(_magnitude[i])) throw new Formats.ModelFormatException(source, null, $"{Module}.lora_magnitude_vector holds a non-finite value ({_magnitude[i]}) at {i}.");
    }

    /// <summary>The same factors with the scale folded into B (B' = s·B, scale 1).</summary>
    public LoraModuleWeights WithUnitScale()
    {
        RequirePlainLora("folding the scale into B");
        if (Scale == 1.0) return this;
        var b = new float[B.Length];
        for (int i = 0; i < b.Length; i++) b[i] = (float)(Scale * B[i]);
        return new LoraModuleWeights(Module, Rank, InFeatures, OutFeatures, (float[])A.Clone(), b, 1.0);
    }
}
