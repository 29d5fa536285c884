// Attaches LoRA adapters to a model's projections according to LoraSettings, initialised as PEFT does:
// A ~ Kaiming-uniform(a = √5) = U(-1/√K, 1/√K) and B = 0 ("default"); A ~ N(0, 1/r) and B = 0 ("gaussian");
// or both A and B random as nn.Linear's default init ("none", PEFT's init_lora_weights=False, for tests).
// With use_dora the magnitude starts at the row norms ‖W + s·B·A‖ (PEFT's DoraLinearLayer.update_layer).
using LoraSharp.Models.Llama;

namespace LoraSharp.Models.Lora;

/// <summary>Creates and attaches adapters.</summary>
public static class LoraInjector
{
    /// <summary>Attaches a trainable adapter named <paramref name="adapterName"/> to every targeted projection; returns them.</summary>
    public static IReadOnlyList<LoraAdapter> Attach(LlamaModel model, LoraSettings settings, int seed, string adapterName = "default", bool trainable = true)
    {
        settings.Validate();
        if (LoraSettings.IsBaseDerivedInit(settings.Init))
            throw new ArgumentException($"init_lora_weights '{settings.Init}' changes the base weights; attach it with LoraSharp.Training.Adapters.PissaInit.Attach.");
        var layers = settings.LayersToTransform ?? Enumerable.Range(0, model.Layers.Length).ToArray();
        foreach (int l in layers)
            if ((uint)l >= (uint)model.Layers.Length)
                throw new Core.UserErrorException($"layers_to_transform names layer {l} but the model has layers 0..{model.Layers.Length - 1}.");
        var rng = new Random(seed);
        var created = new List<LoraAdapter>();
        if (model.Layers.Length > 0)
        {
            // PEFT refuses a target the model does not have; phi3 fuses q/k/v and gate/up (qkv_proj, gate_up_proj).
            var names = model.Layers[0].ModuleNames;
            foreach (var m in settings.ResolvedTargetsFor(names))
                if (!names.Contains(m))
                    throw new Core.UserErrorException($"target module '{m}' does not exist in this {model.Config.ModelType} model; its projections are {string.Join(", ", names)} (or all-linear)."
                        + (model.Config.FusedProjections ? " phi3 fuses q/k/v into qkv_proj and gate/up into gate_up_proj, as PEFT names them." : ""));
        }
        foreach (int l in layers.Order())
        {
            foreach (var module in model.Layers[l].ModuleNames)
            {
                if (!settings.ResolvedTargetsFor(model.Layers[l].ModuleNames).Contains(module)) continue;
                var linear = model.Layers[l].Projection(module);
                int r = settings.RankFor(linear.Name);
                var adapter = new LoraAdapter(adapterName, r, linear.InFeatures, linear.OutFeatures, settings.ScaleFor(linear.Name), (float)settings.Dropout, trainable);
                Initialise(adapter, settings.Init, rng);
                if (settings.UseDora)
                {
                    // PEFT's DoRA init: m = ‖W + s·B·A‖ per row, so the initial model is the base (B = 0) or W + sBA.
                    var norms = new float[linear.OutFeatures];
                    linear.DoraRowNorms(adapter, norms);
                    adapter.EnableDora(norms);
                }
                linear.Attach(adapter);
                created.Add(adapter);
            }
        }
        return created;
    }

    /// <summary>Fills A and B as PEFT's reset_lora_parameters does for <paramref name="init"/>.</summary>
    public static void Initialise(LoraAdapter adapter, string init, Random rng)
    {
        var a = adapter.A.Floats;
        var b = adapter.B.Floats;
        switch (LoraSettings.CanonicalInit(init))
        {
            case "default":
                Uniform(a, 1.0 / Math.Sqrt(adapter.InFeatures), rng);
                b.Clear();
                break;
            case "gaussian":
                for (int i = 0; i < a.Length; i++) a[i] = (float)(Normal(rng) / adapter.Rank);
                b.Clear();
                break;
            case "none":
                Uniform(a, 1.0 / Math.Sqrt(adapter.InFeatures), rng);
                Uniform(b, 1.0 / Math.Sqrt(adapter.Rank), rng);
                break;
            default:
                throw new ArgumentException($"init_lora_weights '{init}' is not one of default (true), gaussian, none (false); pissa and olora: PissaInit.");
        }
    }

    private static void Uniform(Span<float> x, double bound, Random rng)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
    }

    private static double Normal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Every adapter named <paramref name="adapterName"/> in the model with its layer and module.</summary>
    public static IEnumerable<(int Layer, string Module, Linear Linear, LoraAdapter Adapter)> Enumerate(LlamaModel model, string? adapterName = null)
    {
        foreach (var layer in model.Layers)
            foreach (var module in layer.ModuleNames)
            {
                var linear = layer.Projection(module);
                foreach (var a in linear.Adapters)
                    if (adapterName == null || a.AdapterName == adapterName) yield return (layer.Index, module, linear, a);
            }
    }
}
