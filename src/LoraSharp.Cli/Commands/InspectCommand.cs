// `lorasharp inspect <model folder | .gguf | adapter folder>`: prints what InspectJob reports. Presentation only.
using System.CommandLine;
using System.Globalization;
using LoraSharp.App;

namespace LoraSharp.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create()
    {
        var pathArg = new Argument<string>("path") { Description = "A Hugging Face model folder, a .gguf file, or a PEFT adapter folder." };
        var command = new Command("inspect", "Show a model's or adapter's architecture, sizes, tensor dtypes, tokenizer and the memory a LoRA run needs.");
        // train's modules_to_save (same names and checks): the estimate counts them trained in full.
        var modulesOption = new Option<string[]?>("--modules-to-save")
        {
            Description = "Count these as trained in full in the memory estimate, as train's --modules-to-save: embed_tokens, lm_head.",
            AllowMultipleArgumentsPerToken = true,
        };
        command.Arguments.Add(pathArg);
        command.Options.Add(modulesOption);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            string[] modules = [.. (parse.GetValue(modulesOption) ?? []).SelectMany(m => m.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];
            Print(InspectJob.Run(parse.GetValue(pathArg)!, modules), parse.InvocationConfiguration.Output);
            return 0;
        }));
        return command;
    }

    private static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    internal static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{b / 1024.0:0.0} KiB",
        _ => $"{b} B",
    };

    private static void Print(InspectReport r, TextWriter o)
    {
        void Line(string name, object? value) => o.WriteLine($"{name,-22} {value}");
        Line("path", r.Path);
        if (r.Kind == "adapter")
        {
            Line("kind", "PEFT LoRA adapter");
            Line("base model", r.BaseModel ?? "(not recorded)");
            Line("r", r.Rank);
            Line("lora_alpha", r.Alpha?.ToString(CultureInfo.InvariantCulture));
            Line("target modules", r.TargetModules is { } t ? string.Join(", ", t) : "(none)");
            Line("tensors", r.AdapterTensorCount?.ToString(CultureInfo.InvariantCulture) ?? "(no adapter_model.safetensors)");
            Line("parameters", Count(r.ParameterCount));
        }
        else
        {
            var c = r.Config!;
            Line("format", r.Kind == "gguf" ? "GGUF" : "Hugging Face safetensors");
            Line("architecture", c.ModelType);
            Line("hidden_size", c.HiddenSize);
            Line("intermediate_size", c.IntermediateSize);
            Line("layers", c.NumHiddenLayers);
            Line("heads (q / kv)", $"{c.NumAttentionHeads} / {c.NumKeyValueHeads}, head_dim {c.HeadDim}");
            Line("vocab_size", c.VocabSize);
            Line("context", c.MaxPositionEmbeddings);
            Line("rope_theta", c.RopeTheta.ToString(CultureInfo.InvariantCulture) + (c.RopeScaling is { } s ? $" (scaling {s.RopeType} x{s.Factor.ToString(CultureInfo.InvariantCulture)})" : ""));
            if (c.RotaryDim != c.HeadDim) Line("rotary dims", $"{c.RotaryDim} of head_dim {c.HeadDim} (partial_rotary_factor {c.PartialRotaryFactor.ToString(CultureInfo.InvariantCulture)})");
            if (c.RopeScaling is { IsLongRope: true } lr)
                Line("LongRoPE", $"long factors beyond {lr.OriginalMaxPositionEmbeddings} tokens, cos/sin x{lr.LongRopeAttentionFactor.ToString("0.####", CultureInfo.InvariantCulture)}");
            Line("tied embeddings", c.TieWordEmbeddings ? "yes" : "no");
            if (c.SlidingWindow is int sw)
                Line("sliding window", sw.ToString(CultureInfo.InvariantCulture) + (c.SlidingLayers is { } sl ? $" on {sl.Count(x => x)} of {c.NumHiddenLayers} layers" : ""));
            if (c.AttnLogitSoftcapping is not null || c.FinalLogitSoftcapping is not null)
                Line("logit soft-caps", $"attention {c.AttnLogitSoftcapping?.ToString(CultureInfo.InvariantCulture) ?? "none"}, final {c.FinalLogitSoftcapping?.ToString(CultureInfo.InvariantCulture) ?? "none"}");
            Line("parameters", Count(r.ParameterCount));
            Line("tokenizer", r.TokenizerKind is null ? "(none found)" : $"{r.TokenizerKind}, {r.TokenizerVocabSize?.ToString(CultureInfo.InvariantCulture) ?? "?"} tokens");
            if (r.Memory is { } m && r.MemoryF32 is { } f)
            {
                Line("LoRA memory (est.)", $"{Bytes(m.TotalBytes)} as loaded by default (peak RSS of `train`), {Bytes(f.TotalBytes)} with --base-dtype f32");
                Line("  base weights", $"{Bytes(m.BaseWeightsBytes)} as loaded by default (bf16/f16/quantized matrices kept as stored, decoded inside the matmuls), " +
                                       $"{Bytes(f.BaseWeightsBytes)} as f32");
                if (r.ModulesToSave.Count > 0)
                {
                    long full = (long)r.ModulesToSave.Count * c.VocabSize * c.HiddenSize;
                    Line("  adapters", $"r={m.Rank} on all linears and {string.Join(" and ", r.ModulesToSave)} in full (modules_to_save, {Count(full)} of them): " +
                                       $"{Count(m.TrainableParameters)} params, {Bytes(m.TrainableBytes)} with grads and AdamW (or Sophia) state; lion: {Bytes(m.TrainableParameters * 12)}");
                }
                else
                    Line("  adapters", $"r={m.Rank} on all linears: {Count(m.TrainableParameters)} params, {Bytes(m.TrainableBytes)} with grads and AdamW (or Sophia) state; lion: {Bytes(m.TrainableParameters * 12)}");
                Line("  activations", $"{Bytes(m.ActivationBytes)} (seq {m.SequenceLength}, micro-batch {m.MicroBatch}); {Bytes(m.CheckpointedActivationBytes)} with --gradient-checkpointing");
                Line("  workspace", $"{Bytes(m.WorkspaceBytes)} (runtime and per-thread matmul scratch)");
                if (r.DoraExtraBytes is { } dora)
                    Line("  with DoRA", $"+{Bytes(dora)} (--use-dora on all linears: the saved seq x out product per projection, norms, magnitudes)");
            }
            if (r.IgnoredTensors.Count > 0) Line("ignored tensors", string.Join(", ", r.IgnoredTensors));
        }
        if (r.TensorKinds.Count > 0)
        {
            o.WriteLine();
            o.WriteLine($"{"tensor",-48} {"dtype",-10} {"count",5} {"shape",-14} {"params",12}");
            foreach (var k in r.TensorKinds)
                o.WriteLine($"{k.Kind,-48} {k.DTypes,-10} {k.Count,5} {k.Shape,-14} {Count(k.Parameters),12}");
        }
    }
}
