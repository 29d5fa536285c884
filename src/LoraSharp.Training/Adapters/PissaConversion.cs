// A PiSSA/OLoRA adapter trained against the residual base W_res = W − s·B0·A0 turned into a plain LoRA on the
// ORIGINAL base, exactly, as PEFT's save_pretrained(path_initial_model_for_weight_conversion=...) does
// (peft_model.py; LoraModel.subtract_mutated_init):
//   W_res + s·B'·A' = W + s·(B'·A' − B0·A0) = W + s·[B' | −B0]·[A' ; A0]
// so the converted module has rank 2r, A = [A'; A0] [2r, K], B = [B', −B0] [N, 2r] and the same scale s; the config
// gets r × 2, lora_alpha × 2 (× √2 with rsLoRA, so alpha/r or alpha/√r is unchanged), rank_pattern and
// alpha_pattern scaled the same way, and init_lora_weights true: PEFT, llama.cpp's GGUF LoRA and every LoraSharp
// tool read it like any LoRA. (PEFT doubles alpha_pattern even with rsLoRA, which changes those modules' scale;
// LoraSharp keeps the scale.) Nothing is approximated: the conversion only concatenates.
// A0/B0 come from PissaInit (a finished run) or, for an adapter saved unconverted, are recomputed from the
// original base (FromOriginalBase: pissa and olora only; their s·B0·A0 is a function of W).
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Peft;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Lora;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training.Adapters;

/// <summary>PiSSA / OLoRA adapter → plain rank-2r LoRA on the original base.</summary>
public static class PissaConversion
{
    /// <summary>
    /// The plain LoRA equal to <paramref name="trained"/> on the residual base, on the original base. Every module
    /// of <paramref name="trained"/> needs its initial factors in <paramref name="initial"/> (same rank, shape and scale).
    /// </summary>
    public static LoraWeights ToPlainLora(LoraWeights trained, LoraWeights initial)
    {
        var modules = new List<LoraModuleWeights>();
        foreach (var m in trained.Modules)
        {
            var i = initial.Find(m.Module)
                    ?? throw new Core.UserErrorException($"{trained.Source}: module '{m.Module}' has no initial factors in {initial.Source}; the two adapters do not belong together.");
            if (i.Rank != m.Rank || i.InFeatures != m.InFeatures || i.OutFeatures != m.OutFeatures || Math.Abs(i.Scale - m.Scale) > 1e-6 * Math.Abs(m.Scale))
                throw new Core.UserErrorException(
                    $"{trained.Source}: '{m.Module}' is rank {m.Rank} [{m.OutFeatures}, {m.InFeatures}] scale {m.Scale}, but its initial factors in {initial.Source} are " +
                    $"rank {i.Rank} [{i.OutFeatures}, {i.InFeatures}] scale {i.Scale}; the two adapters do not belong together.");
            if (m.IsDora || i.IsDora) throw new Core.UserErrorException($"{trained.Source}: '{m.Module}' is DoRA; PiSSA/OLoRA conversion applies to plain LoRA factors.");
            int R = m.Rank, R2 = 2 * R, N = m.OutFeatures, K = m.InFeatures;
            var a = new float[(long)R2 * K];
            m.A.CopyTo(a, 0);
            i.A.CopyTo(a, (long)R * K);
            var b = new float[(long)N * R2];
            for (int n = 0; n < N; n++)
                for (int r = 0; r < R; r++)
                {
                    b[(long)n * R2 + r] = m.B[(long)n * R + r];
                    b[(long)n * R2 + R + r] = -i.B[(long)n * R + r];
                }
            modules.Add(new LoraModuleWeights(m.Module, R2, K, N, a, b, m.Scale));
        }
        return new LoraWeights(modules, trained.Source + " (converted to plain LoRA)", trained.BaseModel);
    }

    /// <summary>
    /// Converts an adapter saved WITHOUT conversion (a LoraSharp checkpoint, or PEFT's plain save of a PiSSA/OLoRA
    /// adapter; read with residualRelative: true) on the ORIGINAL base <paramref name="baseTensors"/> (HF names, any
    /// readable dtype): the initial factors are recomputed from W. Exact for pissa (s·B0·A0 = U_r·S_r·V_rᵀ, unique when
    /// σ_r &gt; σ_r+1, whatever the signs) and olora (s·Q_r·R_r = s·Q_r·Q_rᵀ·W); pissa_niter_K's random sketch (torch's
    /// RNG in PEFT) cannot be recomputed, so it is refused, as are CorDA and LoftQ.
    /// </summary>
    public static LoraWeights FromOriginalBase(LoraWeights raw, IReadOnlyDictionary<string, Tensor> baseTensors)
    {
        string init = raw.ResidualInit
                      ?? throw new Core.UserErrorException($"{raw.Source} is an ordinary adapter (its init_lora_weights is not pissa or olora); it needs no conversion.");
        if (init is not ("pissa" or "olora"))
            throw new Core.UserErrorException(
                $"{raw.Source}: init_lora_weights '{init}' cannot be converted from the base alone: " +
                (LoraSettings.IsBaseDerivedInit(init) ? "its randomized SVD's initial factors cannot be recomputed. " : "LoraSharp does not implement it. ") +
                "Finish the LoraSharp run (its adapter is written converted), or convert with PEFT and the initial adapter saved at init.");
        raw.CheckAgainst(name => baseTensors.TryGetValue(name, out var t) ? t.Shape : null, "the base model");
        var initial = new List<LoraModuleWeights>();
        foreach (var m in raw.Modules)
        {
            var w = LoraExtractor.ToF32(baseTensors[m.WeightName]);
            var (a0, b0) = PissaInit.Factors(w, m.OutFeatures, m.InFeatures, m.Rank, m.Scale, init);
            initial.Add(new LoraModuleWeights(m.Module, m.Rank, m.InFeatures, m.OutFeatures, a0, b0, m.Scale));
        }
        return ToPlainLora(raw, new LoraWeights(initial, $"the {init} factors of the base"));
    }

    /// <summary>The adapter_config.json of the converted adapter: r, alpha and their patterns scaled, init_lora_weights true.</summary>
    public static PeftAdapterConfig ConvertedConfig(PeftAdapterConfig config)
    {
        double alphaFactor = config.UseRslora ? Math.Sqrt(2) : 2;
        return config with
        {
            R = 2 * config.R,
            LoraAlpha = config.LoraAlpha * alphaFactor,
            RankPattern = config.RankPattern.ToDictionary(kv => kv.Key, kv => 2 * kv.Value),
            AlphaPattern = config.AlphaPattern.ToDictionary(kv => kv.Key, kv => kv.Value * alphaFactor),
            InitLoraWeights = true,
        };
    }

    /// <summary>
    /// Writes the converted adapter of <paramref name="model"/>'s adapter <paramref name="adapterName"/> (trained from
    /// <paramref name="initial"/>) into an existing folder: adapter_model.safetensors + adapter_config.json, each atomically.
    /// <paramref name="config"/> is the training run's config (init_lora_weights pissa/olora).
    /// </summary>
    public static void WriteFiles(Models.Llama.LlamaModel model, string adapterName, LoraWeights initial, PeftAdapterConfig config, string folder)
    {
        var plain = ToPlainLora(LoraWeights.FromModel(model, adapterName, config.BaseModelNameOrPath), initial);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var m in plain.Modules)
            {
                m.CheckFinite(plain.Source);
                tensors.Add(new(LoraKeys.A(m.Module), Tensor.FromFloats(m.A, m.Rank, m.InFeatures)));
                tensors.Add(new(LoraKeys.B(m.Module), Tensor.FromFloats(m.B, m.OutFeatures, m.Rank)));
            }
            SafetensorsWriter.Write(Path.Combine(folder, PeftAdapter.WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            ConvertedConfig(config).Write(Path.Combine(folder, PeftAdapterConfig.FileName));
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }
}
