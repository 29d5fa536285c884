// PiSSA and OLoRA: LoRA initialisations taken from the base weight W [N, K] itself, as PEFT's init_lora_weights
// "pissa", "pissa_niter_K" and "olora" do (peft/tuners/lora/layer.py pissa_init / olora_init). The adapter starts
// with W's principal part and the frozen base becomes the residual, so the model at step 0 is the base model:
//   pissa          W = U·diag(S)·Vᵀ (exact SVD), A = diag(√(S_r/s))·V_rᵀ [r, K], B = U_r·diag(√(S_r/s)) [N, r]
//                  (divided by the LoRA scaling s as PEFT does, so s·B·A = U_r·diag(S_r)·V_rᵀ)
//   pissa_niter_K  the same from a randomized SVD with K subspace iterations (PEFT: torch.svd_lowrank(W, r, niter=K);
//                  here TruncatedSvd's range finder, 16 extra sketch columns, seeded with the training seed)
//   olora          W = Q·R (reduced QR), B = Q[:, :r] [N, r], A = R[:r, :] [r, K] (no division by s)
//   and then       W_res = W − s·B·A (A, B rounded to f32 first, as PEFT subtracts its f32 factors).
// Sign conventions (the factors are only defined up to the sign of each rank-1 term; s·B·A is not): the largest
// |entry| of each row of Vᵀ is positive (PiSSA); R's diagonal is positive (OLoRA, Gram-Schmidt's convention; LAPACK
// may flip a pair). Adam is sign-equivariant, so training is the same either way.
// W_res replaces W IN PLACE in the projection's f32 panels (PackedWeight.AddToRow): no second copy of the model,
// only one projection's dense [N, K] transient for the factorisation. Stored (quantized, f16, bf16) base weights are
// refused with a clear error (load with --base-dtype f32). The exact SVD eigen-decomposes the min(N, K)² Gram
// matrix by Jacobi rotations: fine for small models, slow beyond a hidden size of ~1k (use pissa_niter_K there).
// Returns the initial factors (A0, B0), which PissaConversion needs to turn the trained adapter into a plain LoRA.
// Not here: DoRA on top (refused by LoraSettings), quantized residuals (PEFT's QPiSSA), CorDA, LoftQ.
using LoraSharp.Core.Tensors;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;

namespace LoraSharp.Training.Adapters;

/// <summary>The adapters a base-derived init attached and their initial factors (for the conversion to plain LoRA).</summary>
/// <param name="Adapters">The trainable adapters, attached.</param>
/// <param name="Initial">A0, B0 and the scale of every module, as they were right after the init.</param>
public sealed record PissaInitResult(IReadOnlyList<LoraAdapter> Adapters, LoraWeights Initial);

/// <summary>PiSSA / OLoRA initialisation of LoRA adapters from the base weights, which become the residual.</summary>
public static class PissaInit
{
    /// <summary>
    /// Attaches trainable adapters as <see cref="LoraInjector.Attach"/> does, initialised by <paramref name="settings"/>.Init
    /// (pissa, pissa_niter_K or olora), and subtracts s·B·A from every adapted base weight in place.
    /// Throws a UserErrorException, before changing anything, when an adapted weight is not held as f32.
    /// </summary>
    public static PissaInitResult Attach(LlamaModel model, LoraSettings settings, int seed, string adapterName = "default")
    {
        settings.Validate();
        string init = settings.Init;
        if (!LoraSettings.IsBaseDerivedInit(init))
            throw new ArgumentException($"PissaInit handles pissa, pissa_niter_K and olora, not '{init}'; use LoraInjector.Attach.");
        var adapters = LoraInjector.Attach(model, settings with { Init = "default" }, seed, adapterName);
        var targets = LoraInjector.Enumerate(model, adapterName).ToList();
        foreach (var (_, _, linear, _) in targets)
        {
            string? why = linear.Weight != null ? "is trained in full (full_fine_tuning)"
                : linear.Packed.StorageDType != DType.F32 ? $"is held as {linear.Packed.StorageDType} (a quantized or half-precision base)"
                : null;
            if (why == null) continue;
            foreach (var (_, _, l, _) in targets) l.Detach(adapterName);
            foreach (var a in adapters) a.Dispose();
            throw new Core.UserErrorException(
                $"init_lora_weights {init}: the base weight {linear.Name} {why}. {init} subtracts the adapter's principal part from the f32 weight; " +
                "load the base in f32 (--base-dtype f32; a quantized GGUF is dequantized then), or use init_lora_weights default for QLoRA " +
                "(PEFT's QPiSSA, a quantized residual, is not supported).");
        }
        var initial = new List<LoraModuleWeights>();
        int ordinal = 0;
        foreach (var (_, _, linear, adapter) in targets)
        {
            Initialise(linear, adapter, init, unchecked(seed * 1_000_003 + ordinal++));
            initial.Add(new LoraModuleWeights(linear.Name, adapter.Rank, adapter.InFeatures, adapter.OutFeatures,
                adapter.A.Floats.ToArray(), adapter.B.Floats.ToArray(), adapter.Scale));
        }
        return new PissaInitResult(adapters, new LoraWeights(initial, $"the initial {init} adapter"));
    }

    // Fills the adapter's A and B from the projection's weight and subtracts s·B·A from it.
    private static void Initialise(Linear linear, LoraAdapter adapter, string init, int seed)
    {
        int N = linear.OutFeatures, K = linear.InFeatures, R = adapter.Rank;
        if (R > Math.Min(N, K))
            throw new Core.UserErrorException($"init_lora_weights {init}: {linear.Name} is [{N}, {K}], so its rank can be at most {Math.Min(N, K)}, not {R}; lower r (or rank_pattern).");
        var w = new float[(long)N * K];
        linear.Packed.GatherRows(Enumerable.Range(0, N).ToArray(), w);
        var (a, b) = Factors(w, N, K, R, adapter.Scale, init, seed);
        a.CopyTo(adapter.A.Floats);
        b.CopyTo(adapter.B.Floats);
        var delta = new float[K];
        var row = new double[K];
        double s = adapter.Scale;
        for (int n = 0; n < N; n++)
        {
            Array.Clear(row);
            for (int r = 0; r < R; r++)
            {
                double c = b[n * R + r];
                if (c == 0) continue;
                for (int k = 0; k < K; k++) row[k] += c * a[r * K + k];
            }
            for (int k = 0; k < K; k++) delta[k] = (float)(-s * row[k]);
            linear.Packed.AddToRow(n, delta);
        }
    }

    /// <summary>
    /// The initial factors of <paramref name="init"/> for a dense weight <paramref name="w"/> [N, K] (row-major f32):
    /// A [R, K] and B [N, R] with s·B·A the part the residual loses. <paramref name="seed"/> seeds pissa_niter_K.
    /// </summary>
    public static (float[] A, float[] B) Factors(ReadOnlySpan<float> w, int N, int K, int R, double scale, string init, int seed = 0)
    {
        if (w.Length != (long)N * K) throw new ArgumentException($"The weight has {w.Length} values, not [{N}, {K}].");
        if (R < 1 || R > Math.Min(N, K)) throw new ArgumentException($"Rank {R} is not possible for a [{N}, {K}] weight.");
        if (!(scale > 0) || !double.IsFinite(scale)) throw new ArgumentException($"The LoRA scaling must be positive and finite (is {scale}).");
        if (init == "olora") return Olora(w, N, K, R);
        SvdResult svd;
        if (init == "pissa") svd = TruncatedSvd.Compute(w, N, K, R, seed, powerIterations: 0, oversampling: int.MaxValue);
        else if (LoraSettings.TryParsePissaNiter(init, out int niter)) svd = TruncatedSvd.Compute(w, N, K, R, seed, niter, TruncatedSvd.Oversampling);
        else throw new ArgumentException($"'{init}' is not pissa, pissa_niter_K or olora.");

        var a = new float[R * K];
        var b = new float[N * R];
        for (int r = 0; r < R; r++)
        {
            // Sign: the largest |Vᵀ[r, k]| positive (first one on ties).
            int big = 0;
            for (int k = 1; k < K; k++)
                if (Math.Abs(svd.Vt[r * K + k]) > Math.Abs(svd.Vt[r * K + big])) big = k;
            double sign = svd.Vt[r * K + big] < 0 ? -1 : 1;
            double root = Math.Sqrt(svd.S[r] / scale);
            for (int k = 0; k < K; k++) a[r * K + k] = (float)(sign * root * svd.Vt[r * K + k]);
            for (int n = 0; n < N; n++) b[n * R + r] = (float)(sign * root * svd.U[n * R + r]);
        }
        return (a, b);
    }

    // Reduced QR's first R columns of Q and rows of R by modified Gram-Schmidt (twice, in double) on W's columns:
    // B = Q_r [N, R], A = R_r = Q_rᵀ·W [R, K] with zeros below the diagonal. A column that is (numerically) in the
    // span of the ones before it gets the first unit vector orthogonal to them and R's diagonal 0, as Householder would.
    private static (float[] A, float[] B) Olora(ReadOnlySpan<float> w, int N, int K, int R)
    {
        var q = new double[R * N];   // Q_rᵀ [R, N]: row i is column i of Q
        double scaleW = 0;
        foreach (float v in w) scaleW = Math.Max(scaleW, Math.Abs(v));
        for (int i = 0; i < R; i++)
        {
            var qi = q.AsSpan(i * N, N);
            for (int n = 0; n < N; n++) qi[n] = w[n * K + i];
            double before = Norm(qi);
            Orthogonalise(q, i, N);
            double after = Norm(qi);
            if (after <= 1e-12 * Math.Max(before, scaleW) || after == 0)
            {
                for (int e = 0; e < N; e++)
                {
                    qi.Clear();
                    qi[e] = 1;
                    Orthogonalise(q, i, N);
                    after = Norm(qi);
                    if (after > 0.5) break;
                }
            }
            for (int n = 0; n < N; n++) qi[n] /= after;
        }
        var a = new float[R * K];
        var b = new float[N * R];
        for (int i = 0; i < R; i++)
        {
            for (int n = 0; n < N; n++) b[n * R + i] = (float)q[i * N + n];
            for (int k = i; k < K; k++)
            {
                double dot = 0;
                for (int n = 0; n < N; n++) dot += q[i * N + n] * w[n * K + k];
                a[i * K + k] = (float)dot;
            }
        }
        return (a, b);
    }

    private static void Orthogonalise(double[] q, int i, int N)
    {
        var qi = q.AsSpan(i * N, N);
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < i; j++)
            {
                var qj = q.AsSpan(j * N, N);
                double dot = 0;
                for (int n = 0; n < N; n++) dot += qi[n] * qj[n];
                for (int n = 0; n < N; n++) qi[n] -= dot * qj[n];
            }
    }

    private static double Norm(ReadOnlySpan<double> x)
    {
        double s = 0;
        foreach (double v in x) s += v * v;
        return Math.Sqrt(s);
    }
}
