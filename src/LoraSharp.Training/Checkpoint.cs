// checkpoint-N/ folders: everything a run needs to continue exactly where it stopped. trainable.safetensors holds
// every trainable parameter by name (LoRA A/B under PEFT keys, or all weights in full fine-tuning),
// optimizer.safetensors the optimizer buffers, trainer_state.json the step, data position, early-stopping state and
// the log so far. LoRA checkpoints also hold adapter_config.json + adapter_model.safetensors, so a checkpoint is a
// usable adapter. The scheduler is a pure function of the step and dropout masks of (seed, step), so neither needs
// saving. Folders are written atomically.
using System.Text.Json;
using System.Text.Json.Serialization;
using LoraSharp.Core.Optim;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Peft;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Training.Data;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training;

/// <summary>Saves and restores training checkpoints.</summary>
public static class Checkpoint
{
    private const string ParametersFile = "trainable.safetensors";
    private const string OptimizerFile = "optimizer.safetensors";
    private const string StateFile = "trainer_state.json";

    private sealed record State(
        [property: JsonPropertyName("step")] int Step,
        [property: JsonPropertyName("epoch")] int Epoch,
        [property: JsonPropertyName("index")] int Index,
        [property: JsonPropertyName("best_eval_loss")] double? BestEvalLoss,
        [property: JsonPropertyName("evals_without_improvement")] int EvalsWithoutImprovement,
        [property: JsonPropertyName("optimizer")] string Optimizer,
        [property: JsonPropertyName("log_history")] List<StepRecord> History);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The folder name of the checkpoint after <paramref name="step"/> steps.</summary>
    public static string FolderName(int step) => $"checkpoint-{step}";

    /// <summary>Writes a checkpoint of <paramref name="trainer"/> into <paramref name="folder"/> (replacing an older one).</summary>
    public static void Save(string folder, Trainer trainer, LlamaModel model, PeftAdapterConfig? peftConfig, string adapterName = "default")
    {
        AtomicFolder.Write(folder, overwrite: true, temp =>
        {
            SafetensorsWriter.Write(Path.Combine(temp, ParametersFile), trainer.Parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)));
            var opt = trainer.Optimizer.ExportState();
            var buffers = opt.Buffers.OrderBy(b => b.Key, StringComparer.Ordinal)
                .Select(b => new KeyValuePair<string, Tensor>(b.Key, Tensor.FromFloats(b.Value, b.Value.Length))).ToList();
            try
            {
                SafetensorsWriter.Write(Path.Combine(temp, OptimizerFile), buffers,
                    new Dictionary<string, string> { ["optimizer"] = opt.Optimizer, ["step"] = opt.Step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
            finally
            {
                foreach (var b in buffers) b.Value.Dispose();
            }
            var pos = trainer.DataPosition;
            var state = new State(trainer.Step, pos.Epoch, pos.Index, trainer.BestEvalLoss, trainer.EvalsWithoutImprovement, opt.Optimizer, trainer.History);
            File.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, Json));
            if (peftConfig != null) PeftAdapter.WriteFiles(model, adapterName, peftConfig, temp);
        });
    }

    /// <summary>Restores parameters, optimizer state and loop state from <paramref name="folder"/> into <paramref name="trainer"/>.</summary>
    public static void Restore(string folder, Trainer trainer, LlamaModel model)
    {
        string statePath = Path.Combine(folder, StateFile);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"{folder} is not a checkpoint: {StateFile} is missing.", statePath);
        var state = JsonSerializer.Deserialize<State>(File.ReadAllText(statePath), Json)
                    ?? throw new InvalidDataException($"{statePath} is empty.");

        using (var st = SafetensorsFile.Open(Path.Combine(folder, ParametersFile)))
        {
            foreach (var p in trainer.Parameters)
            {
                if (!st.Contains(p.Name))
                    throw new InvalidDataException($"{folder}: parameter '{p.Name}' is not in the checkpoint; resume with the same LoRA settings (target modules, layers, rank).");
                using var t = st.GetTensor(p.Name);
                if (t.ElementCount != p.Length || t.DType != DType.F32)
                    throw new InvalidDataException($"{folder}: '{p.Name}' has shape {t.ShapeText} ({t.DType}) but the run needs {p.Value.ShapeText} F32.");
                t.Floats.CopyTo(p.Value.Floats);
            }
        }
        if (trainer.Parameters.Count > 0 && model.GradEmbedding != null) model.RepackTrainable();

        using (var st = SafetensorsFile.Open(Path.Combine(folder, OptimizerFile)))
        {
            var buffers = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var info in st.Tensors)
            {
                using var t = st.GetTensor(info.Name);
                buffers[info.Name] = t.Floats.ToArray();
            }
            int step = int.Parse(st.Metadata.GetValueOrDefault("step") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            trainer.Optimizer.ImportState(new OptimizerState(st.Metadata.GetValueOrDefault("optimizer") ?? state.Optimizer, step, buffers));
        }
        trainer.Restore(state.Step, new DataPosition(state.Epoch, state.Index), state.BestEvalLoss, state.EvalsWithoutImprovement, state.History);
    }

    /// <summary>The newest checkpoint-N folder inside <paramref name="outputFolder"/>, or null.</summary>
    public static string? Latest(string outputFolder)
    {
        if (!Directory.Exists(outputFolder)) return null;
        return Directory.EnumerateDirectories(outputFolder, "checkpoint-*")
            .Select(d => (Dir: d, Ok: int.TryParse(Path.GetFileName(d)["checkpoint-".Length..], out int n), N: n))
            .Where(x => x.Ok && File.Exists(Path.Combine(x.Dir, StateFile)))
            .OrderByDescending(x => x.N).Select(x => x.Dir).FirstOrDefault();
    }
}
