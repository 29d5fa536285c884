// checkpoint-N/ folders: everything a run needs to continue exactly where it stopped. trainable.safetensors holds
// every trainable parameter by name (LoRA A/B under PEFT keys, or all weights in full fine-tuning),
// optimizer.safetensors the optimizer buffers, trainer_state.json the step, data position, early-stopping state and
// the log so far. LoRA checkpoints also hold adapter_config.json + adapter_model.safetensors, so a checkpoint is a
// usable adapter. The scheduler is a pure function of the step and dropout masks of (seed, step), so neither needs
// saving. Folders are written atomically and flushed to the disk; checksums.json (SHA-256 of every file, written
// last) lets a resume tell a damaged checkpoint from a good one and fall back to the one before.
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
            WriteChecksums(temp);
        });
    }

    /// <summary>Restores parameters, optimizer state and loop state from <paramref name="folder"/> into <paramref name="trainer"/>.</summary>
    public static void Restore(string folder, Trainer trainer, LlamaModel model) => Apply(Read(folder, trainer), trainer, model);

    /// <summary>A checkpoint read and checked in full, not yet applied.</summary>
    public sealed class Loaded
    {
        internal Loaded(string folder, int step, Dictionary<string, float[]> parameters, OptimizerState optimizer, DataPosition position,
            double? bestEvalLoss, int evalsWithoutImprovement, List<StepRecord> history)
        {
            Folder = folder; Step = step; Parameters = parameters; Optimizer = optimizer; Position = position;
            BestEvalLoss = bestEvalLoss; EvalsWithoutImprovement = evalsWithoutImprovement; History = history;
        }

        /// <summary>The checkpoint folder.</summary>
        public string Folder { get; }
        /// <summary>Optimizer steps done.</summary>
        public int Step { get; }
        internal Dictionary<string, float[]> Parameters { get; }
        internal OptimizerState Optimizer { get; }
        internal DataPosition Position { get; }
        internal double? BestEvalLoss { get; }
        internal int EvalsWithoutImprovement { get; }
        internal List<StepRecord> History { get; }
    }

    /// <summary>
    /// Reads and checks every file of a checkpoint for <paramref name="trainer"/> (checksums, parameter names and shapes,
    /// optimizer buffers, state) without changing anything; throws a UserErrorException saying what is damaged.
    /// </summary>
    public static Loaded Read(string folder, Trainer trainer)
    {
        string statePath = Path.Combine(folder, StateFile);
        if (!File.Exists(statePath)) throw new Core.UserErrorException($"{folder} is not a checkpoint: {StateFile} is missing.");
        VerifyChecksums(folder);
        State state;
        try
        {
            state = JsonSerializer.Deserialize<State>(File.ReadAllText(statePath), Json) ?? throw new Core.UserErrorException($"{statePath} is empty.");
        }
        catch (JsonException e)
        {
            throw new Core.UserErrorException($"{statePath} is damaged: {e.Message}", e);
        }

        var parameters = new Dictionary<string, float[]>(StringComparer.Ordinal);
        using (var st = SafetensorsFile.Open(Path.Combine(folder, ParametersFile)))
        {
            foreach (var p in trainer.Parameters)
            {
                if (!st.Contains(p.Name))
                    throw new Core.UserErrorException($"{folder}: parameter '{p.Name}' is not in the checkpoint; resume with the same LoRA settings (target modules, layers, rank).");
                using var t = st.GetTensor(p.Name);
                if (t.ElementCount != p.Length || t.DType != DType.F32)
                    throw new Core.UserErrorException($"{folder}: '{p.Name}' has shape {t.ShapeText} ({t.DType}) but the run needs {p.Value.ShapeText} F32.");
                parameters[p.Name] = t.Floats.ToArray();
            }
        }

        OptimizerState optimizer;
        using (var st = SafetensorsFile.Open(Path.Combine(folder, OptimizerFile)))
        {
            var buffers = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var info in st.Tensors)
            {
                using var t = st.GetTensor(info.Name);
                buffers[info.Name] = t.Floats.ToArray();
            }
            if (!int.TryParse(st.Metadata.GetValueOrDefault("step") ?? "0", System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int step))
                throw new Core.UserErrorException($"{folder}: {OptimizerFile} has a bad step '{st.Metadata.GetValueOrDefault("step")}'.");
            optimizer = new OptimizerState(st.Metadata.GetValueOrDefault("optimizer") ?? state.Optimizer, step, buffers);
        }
        return new Loaded(folder, state.Step, parameters, optimizer, new DataPosition(state.Epoch, state.Index), state.BestEvalLoss,
            state.EvalsWithoutImprovement, state.History);
    }

    /// <summary>Puts a checked checkpoint's parameters, optimizer state and loop state into <paramref name="trainer"/>.</summary>
    public static void Apply(Loaded c, Trainer trainer, LlamaModel model)
    {
        foreach (var p in trainer.Parameters) c.Parameters[p.Name].CopyTo(p.Value.Floats);
        if (trainer.Parameters.Count > 0 && (model.GradEmbedding != null || model.GradOutput != null)) model.RepackTrainable();
        trainer.Optimizer.ImportState(c.Optimizer);
        trainer.Restore(c.Step, c.Position, c.BestEvalLoss, c.EvalsWithoutImprovement, c.History);
    }

    /// <summary>
    /// The newest checkpoint of <paramref name="candidates"/> (newest first) that reads back intact; each damaged one
    /// passed over is reported through <paramref name="skipped"/> (folder, why). Null when none is intact.
    /// </summary>
    public static Loaded? ReadNewestIntact(IEnumerable<string> candidates, Trainer trainer, Action<string, string> skipped)
    {
        foreach (var folder in candidates)
        {
            try
            {
                return Read(folder, trainer);
            }
            catch (Exception e) when (e is Core.UserErrorException or IOException or InvalidDataException or UnauthorizedAccessException)
            {
                skipped(folder, e.Message);
            }
        }
        return null;
    }

    private const string ChecksumFile = "checksums.json";

    // SHA-256 of every file, written last: a checkpoint without it (older LoraSharp) is read without the check.
    private static void WriteChecksums(string folder)
    {
        var sums = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != ChecksumFile))
            sums[Path.GetRelativePath(folder, file).Replace('\\', '/')] = Sha256(file);
        File.WriteAllText(Path.Combine(folder, ChecksumFile), JsonSerializer.Serialize(new Dictionary<string, object> { ["sha256"] = sums }, Json));
    }

    private static void VerifyChecksums(string folder)
    {
        string path = Path.Combine(folder, ChecksumFile);
        if (!File.Exists(path)) return;
        Dictionary<string, Dictionary<string, string>>? doc;
        try { doc = JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, string>>>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new Core.UserErrorException($"{path} is damaged: {e.Message}", e); }
        if (doc?.GetValueOrDefault("sha256") is not { } sums) throw new Core.UserErrorException($"{path} has no sha256 table.");
        foreach (var (name, expected) in sums)
        {
            string file = Path.Combine(folder, name);
            if (!File.Exists(file)) throw new Core.UserErrorException($"{folder}: {name} is missing.");
            if (!string.Equals(Sha256(file), expected, StringComparison.OrdinalIgnoreCase))
                throw new Core.UserErrorException($"{folder}: {name} is damaged (its SHA-256 differs from {ChecksumFile}).");
        }
    }

    private static string Sha256(string file)
    {
        using var fs = File.OpenRead(file);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs));
    }

    /// <summary>The checkpoint-N folders inside <paramref name="outputFolder"/>, newest first.</summary>
    public static IReadOnlyList<string> All(string outputFolder)
    {
        if (!Directory.Exists(outputFolder)) return [];
        return Directory.EnumerateDirectories(outputFolder, "checkpoint-*")
            .Select(d => (Dir: d, Ok: int.TryParse(Path.GetFileName(d)["checkpoint-".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n), N: n))
            .Where(x => x.Ok).OrderByDescending(x => x.N).Select(x => x.Dir).ToArray();
    }

    /// <summary>The newest checkpoint-N folder inside <paramref name="outputFolder"/> that has a trainer state, or null.</summary>
    public static string? Latest(string outputFolder) => All(outputFolder).FirstOrDefault(d => File.Exists(Path.Combine(d, StateFile)));
}
