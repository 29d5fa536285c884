// The fine-tune use case shared by `lorasharp train` and the web UI: load the model, build the datasets, attach the
// adapter (or enable full fine-tuning; PiSSA/OLoRA inits through PissaInit, written converted to plain LoRA by
// PissaConversion), train with checkpoints and resume, and write the adapter folder:
//   adapter_model.safetensors + adapter_config.json (PEFT), training_parameters.json, training_prompt.json,
//   training_log.json, training_log.jsonl (one line per step), loss_chart.svg, data_preview.json, checkpoint-N/.
// Nothing is lost on failure: the run works in OutputRoot/NAME.run/ (its checkpoints, logs and, at the end, the adapter
// files) and only a finished run's folder is renamed to OutputRoot/NAME in one step (replacing an old adapter only
// then, with --overwrite), so an adapter folder is always complete, and a failed or killed run leaves the old adapter
// and the run's checkpoints. An interrupted run stays NAME.run (listed as a checkpoint); --resume continues from its
// newest intact checkpoint, passing over damaged ones with a warning. Every file is written atomically and fsynced.
using System.Text.Json;
using System.Text.Json.Serialization;
using LoraSharp.Core;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.Training;
using LoraSharp.Training.Data;
using LoraSharp.Training.Peft;

namespace LoraSharp.App;

/// <summary>What to fine-tune and where to write it.</summary>
public sealed record FineTuneRequest
{
    /// <summary>Base model folder or GGUF file.</summary>
    public required string Model { get; init; }
    /// <summary>All settings (data, hyperparameters, LoRA).</summary>
    public required TrainingSettings Settings { get; init; }
    /// <summary>Folder that holds adapter folders (the adapter goes to OutputRoot/lora_name).</summary>
    public string OutputRoot { get; init; } = "loras";
    /// <summary>Continue from the newest checkpoint in the adapter folder.</summary>
    public bool Resume { get; init; }
    /// <summary>Folder of the shipped format files (formats/), for format names like "alpaca".</summary>
    public string? FormatsFolder { get; init; }
    /// <summary>The ranks of a data-parallel run (default: one process); rank 0 alone writes files and reports.</summary>
    public Training.Distributed.ICommunicator? Communicator { get; init; }
}

/// <summary>The result of a fine-tune.</summary>
/// <param name="AdapterFolder">Where the adapter was written.</param>
/// <param name="Outcome">How training ended.</param>
/// <param name="InitialEvalLoss">Validation loss before training (null without a validation set).</param>
public sealed record FineTuneResult(string AdapterFolder, TrainingOutcome Outcome, double? InitialEvalLoss)
{
    /// <summary>Parameters trained (adapter weights, or every weight in full fine-tuning).</summary>
    public long TrainableParameters { get; init; }
    /// <summary>Bytes of optimizer state at the end (moments, factored second moments, momentum).</summary>
    public long OptimizerStateBytes { get; init; }
    /// <summary>Bytes the frozen base weights hold in memory (smaller with an nf4/q8_0 base).</summary>
    public long BaseWeightBytes { get; init; }
}

/// <summary>Observer of a fine-tune (CLI progress line, web UI events).</summary>
public interface IFineTuneObserver
{
    /// <summary>A line of information (model summary, dataset sizes, warnings).</summary>
    void Info(string line);
    /// <summary>The number of steps is known.</summary>
    void Started(int totalSteps, int resumedAtStep);
    /// <summary>A step finished.</summary>
    void Step(StepRecord record);
}

/// <summary>Runs fine-tunes.</summary>
public static class FineTuneJob
{
    private const string AdapterName = "default";

    /// <summary>Runs <paramref name="request"/>; cancellation stops after the current step and saves a resumable checkpoint.</summary>
    public static FineTuneResult Run(FineTuneRequest request, IFineTuneObserver observer, CancellationToken cancel = default)
    {
        var s = request.Settings;
        s.Validate();
        var comm = request.Communicator ?? Training.Distributed.SingleProcess.Instance;
        bool lead = comm.Rank == 0;   // a data-parallel run: rank 0 alone writes files and reports
        if (!lead) observer = SilentObserver.Instance;
        string folder = Path.GetFullPath(Path.Combine(request.OutputRoot, s.LoraName));
        string runFolder = RunFolder(folder);
        // Resume candidates: the interrupted run's checkpoints first, then those of a finished adapter of the same name.
        var candidates = request.Resume ? Training.Checkpoint.All(runFolder).Concat(Training.Checkpoint.All(folder)).ToList() : [];
        Agreed(comm, "checking the output folder", () =>
        {
            if (!lead) return;
            if (request.Resume && candidates.Count == 0)
                throw new UserErrorException($"--resume: no checkpoint-N folder in {runFolder} or {folder}; start without --resume (save_steps > 0 makes checkpoints, and Ctrl+C saves one).");
            if (!request.Resume && !s.AlwaysOverride)
            {
                if (Directory.Exists(folder))
                    throw new UserErrorException($"{folder} already exists. Choose another --name, pass --overwrite to replace it once the new adapter is complete, or --resume to continue it.");
                if (Directory.Exists(runFolder))
                    throw new UserErrorException($"{runFolder} holds an interrupted run of '{s.LoraName}'. Continue it with --resume, or pass --overwrite to start over.");
            }
        });

        // Every rank loads the model (memory-mapped) and the data; a failure on any rank ends all of them with its message.
        ModelSession? opened = null;
        Agreed(comm, "loading the model", () => opened = ModelSession.Open(request.Model, baseDType: s.BaseDType, fullFineTuning: s.FullFineTuning, doubleQuant: s.DoubleQuant));
        using var session = opened!;
        var model = session.Model;
        var tokenizer = session.Tokenizer;
        model.ActivationCheckpointing = s.GradientCheckpointing;

        PreparedData? data = null;
        Agreed(comm, "preparing the data", () => data = s.Objective == "sft" ? PrepareData(request, s, tokenizer, model.Config.MaxPositionEmbeddings, session.ChatTemplate) : null);
        // PiSSA/OLoRA move W's principal part into the adapter and train against the residual; resume recomputes the
        // same (seeded) init before loading the checkpoint's factors, and the end writes the converted plain LoRA.
        // target_modules not given: the family's PEFT default (phi3: qkv_proj), resolved here once and written as used.
        var lora = s.ToLoraSettings(model.Config.ModelType);
        var moduleNames = model.Layers.Length > 0 ? model.Layers[0].ModuleNames : null;
        Training.Adapters.PissaInitResult? pissa = null;
        if (!s.FullFineTuning && LoraSettings.IsBaseDerivedInit(s.InitLoraWeights))
        {
            int side = model.Layers.Max(l => l.Projections.Max(p => Math.Min(p.InFeatures, p.OutFeatures)));
            if (s.InitLoraWeights == "pissa" && side > 1024)
                observer.Info($"note: init_lora_weights pissa runs an exact SVD per projection (cost ~ {side}³ here, minutes to hours); pissa_niter_4 is PEFT's fast equivalent");
            pissa = Training.Adapters.PissaInit.Attach(model, lora, s.Seed, AdapterName);
        }
        else if (!s.FullFineTuning) LoraInjector.Attach(model, lora, s.Seed, AdapterName);
        if (!s.FullFineTuning) model.TrainModulesToSave(s.ModulesToSave);   // PEFT modules_to_save: embedding / head in full
        var peftConfig = s.FullFineTuning ? null : PeftAdapter.ToConfig(lora, Path.GetFileName(session.Source.TrimEnd('/')), modulesToSave: model.ModulesToSave,
            moduleNames: moduleNames);

        int padId = Batcher.ResolvePadId(tokenizer);
        Trainer trainer;
        if (data != null)
        {
            trainer = new Trainer(model, s, data.Train, data.Eval, padId);
        }
        else
        {
            var (train, eval) = PreparePreferenceData(s, tokenizer, model.Config.MaxPositionEmbeddings);
            trainer = new Trainer(model, s, train, eval);
            observer.Info($"data: {s.Objective} preference pairs, {train.Pairs.Count} training ({train.Pairs.Sum(p => (long)p.TokenCount):N0} tokens" +
                          (train.Dropped > 0 ? $", {train.Dropped} longer than cutoff_len dropped" : "") + (train.Truncated > 0 ? $", {train.Truncated} truncated" : "") +
                          $"), {eval?.Pairs.Count ?? 0} validation; " +
                          (s.Objective == "dpo" ? $"loss {s.DpoLoss}, beta {s.Beta}, reference = the base with the adapter off" : $"lambda {s.OrpoLambda}, no reference"));
        }
        long trainable = trainer.Parameters.Sum(p => (long)p.Length);
        long total = model.Layers.Sum(l => l.Projections.Sum(p => (long)p.InFeatures * p.OutFeatures)) + (long)model.Config.VocabSize * model.Config.HiddenSize;
        observer.Info($"model: {session.Source} ({model.Config.ModelType}, {model.Config.NumHiddenLayers} layers, hidden {model.Config.HiddenSize}, vocab {model.Config.VocabSize})");
        observer.Info($"trainable: {trainable:N0} parameters ({100.0 * trainable / Math.Max(1, total):F3}% of {total:N0})" +
                      (s.FullFineTuning ? ", full fine-tuning" : $", LoRA r={s.LoraRank} alpha={s.EffectiveLoraAlpha} on {string.Join(",", moduleNames is null ? lora.ResolvedTargets : lora.ResolvedTargetsFor(moduleNames))}"
                         + (s.TargetModules is null ? $" (target_modules not given: the {model.Config.ModelType} default)" : "") + (s.UseDora ? " (DoRA)" : "")
                      + (model.ModulesToSave.Count > 0 ? $", {string.Join(" and ", model.ModulesToSave)} in full (modules_to_save{(model.TiedOutput ? ", untied from the tied base" : "")})" : "")));
        if (data != null)
            observer.Info($"data: {data.Kind}, {data.Train.Count} training samples ({data.Train.Sum(x => (long)x.Length):N0} tokens, " +
                          $"{data.Train.Sum(x => (long)x.TrainedTokenCount):N0} trained), {data.Eval.Count} validation samples");
        observer.Info($"steps: {trainer.TotalSteps} ({trainer.StepsPerEpoch} per epoch), batch {s.BatchSize} = {s.MicroBatchSize} x {s.GradientAccumulationSteps} accumulation");
        if (comm.Size > 1)
        {
            trainer.Communicator = comm;
            int a = s.GradientAccumulationSteps, least = a / comm.Size;
            observer.Info($"data-parallel: {comm.Size} ranks (MPI), each computes {(a % comm.Size == 0 ? $"{least}" : $"{least} or {least + 1}")} of the {a} micro-batches of a step; " +
                          $"{trainer.AllReduceBytesPerStep:N0} bytes all-reduced per step" +
                          (s.GradientAccumulationSteps < comm.Size ? $". warning: {comm.Size - s.GradientAccumulationSteps} ranks idle: lower micro_batch_size so batch_size / micro_batch_size >= {comm.Size}" : ""));
        }
        observer.Info($"base weights: {BaseWeightsSummary(model)}");
        if (pissa != null)
            observer.Info($"init: {s.InitLoraWeights}, the adapted base weights are now the residual W - s*B0*A0 (in place); " +
                          $"the adapter is written converted to a plain LoRA of rank {2 * s.LoraRank} on the original base");
        foreach (var note in session.Notes) observer.Info("note: " + note);
        observer.Info($"memory estimate: {EstimateMemoryGiB(model, s, trainable):F2} GiB peak (base weights, trainable and {s.Optimizer} state, activations, workspace{(s.UseDora ? ", DoRA buffers" : "")})");

        Training.Checkpoint.Loaded? resumed = null;
        if (request.Resume)
        {
            // Rank 0 picks the checkpoint (setting damaged ones aside); the others read the folder it names, so every
            // rank resumes from the same one, whatever number of ranks wrote it.
            Agreed(comm, "choosing the checkpoint to resume", () =>
            {
                if (!lead) return;
                resumed = Training.Checkpoint.ReadNewestIntact(candidates, trainer, (damaged, why) =>
                {
                    observer.Info($"warning: {damaged} cannot be used ({why}); it is kept as {Path.GetFileName(damaged)}.damaged, trying the one before");
                    SetAside(damaged);
                });
                if (resumed == null)
                    throw new UserErrorException($"--resume: none of the {candidates.Count} checkpoints of '{s.LoraName}' is intact (each is kept as checkpoint-N.damaged); start again without --resume.");
            });
            if (comm.Size > 1)
            {
                string chosen = BroadcastText(comm, lead ? resumed!.Folder : "");
                Agreed(comm, "reading the checkpoint", () => { if (!lead) resumed = Training.Checkpoint.Read(chosen, trainer); });
            }
        }
        else if (lead && Directory.Exists(runFolder))
        {
            Directory.Delete(runFolder, recursive: true);   // --overwrite: an interrupted run of the same name starts over
        }

        if (lead)
        {
            Directory.CreateDirectory(runFolder);
            Training.AtomicFolder.RemoveLeftovers(runFolder);   // half-written files of a run that was killed
            if (data != null) DataPreview.Write(Path.Combine(runFolder, "data_preview.json"), data.Train, tokenizer, 5);
            WriteText(Path.Combine(runFolder, TrainingSettingsFile.ParametersFileName), TrainingSettingsFile.ToJson(s));
            if (data != null) WriteText(Path.Combine(runFolder, "training_prompt.json"), JsonSerializer.Serialize(data.Template, Indented));
        }

        if (resumed != null)
        {
            Training.Checkpoint.Apply(resumed, trainer, model);
            observer.Info($"resumed from {resumed.Folder} at step {trainer.Step}");
        }
        double? initialEval = resumed == null ? trainer.Evaluate() : null;
        if (initialEval is { } ie) observer.Info($"validation loss before training: {ie:F4}");

        // One line per step, appended and flushed as it happens (a reader may see a torn last line after a kill -9);
        // rewritten whole from the checkpoint's history on resume, so it never holds steps the run redoes.
        string logPath = Path.Combine(runFolder, TrainingStepLog.FileName);
        if (lead)
        {
            RewriteLog(logPath, trainer.History);
            trainer.StepCompleted += record =>
            {
                File.AppendAllText(logPath, JsonSerializer.Serialize(record) + "\n");
                observer.Step(record);
            };
            trainer.CheckpointDue += step => Training.Checkpoint.Save(Path.Combine(runFolder, Training.Checkpoint.FolderName(step)), trainer, model, peftConfig, AdapterName);
        }
        observer.Started(trainer.TotalSteps, trainer.Step);

        TrainingOutcome outcome;
        try
        {
            outcome = trainer.Run(cancel);
        }
        catch (TrainingDivergedException)
        {
            if (lead) WriteLogAndChart(runFolder, s, trainer, null);
            throw;
        }
        if (!lead) return new FineTuneResult(runFolder, outcome, initialEval);   // rank 0 writes the adapter
        if (outcome.StopReason == "interrupted")
        {
            string cp = Path.Combine(runFolder, Training.Checkpoint.FolderName(trainer.Step));
            Training.Checkpoint.Save(cp, trainer, model, peftConfig, AdapterName);
            WriteLogAndChart(runFolder, s, trainer, outcome);
            observer.Info($"interrupted: saved {cp}; continue with --resume");
            return new FineTuneResult(runFolder, outcome, initialEval) { TrainableParameters = trainable, OptimizerStateBytes = trainer.Optimizer.StateBytes, BaseWeightBytes = model.BaseWeightBytes };
        }
        if (pissa != null) Training.Adapters.PissaConversion.WriteFiles(model, AdapterName, pissa.Initial, peftConfig!, runFolder);
        else if (peftConfig != null) PeftAdapter.WriteFiles(model, AdapterName, peftConfig, runFolder);
        else WriteFullModel(model, runFolder);
        WriteLogAndChart(runFolder, s, trainer, outcome);
        Training.AtomicFolder.Commit(runFolder, folder);   // the adapter appears complete, in one rename
        return new FineTuneResult(folder, outcome, initialEval) { TrainableParameters = trainable, OptimizerStateBytes = trainer.Optimizer.StateBytes, BaseWeightBytes = model.BaseWeightBytes };
    }

    /// <summary>Where a run of the adapter <paramref name="adapterFolder"/> works until it finishes (NAME.run beside it).</summary>
    public static string RunFolder(string adapterFolder) => Path.GetFullPath(adapterFolder).TrimEnd(Path.DirectorySeparatorChar) + RunSuffix;

    // Runs a part of the setup on every rank and agrees on its outcome: one rank's failure becomes every rank's error.
    private static void Agreed(Training.Distributed.ICommunicator comm, string where, Action action)
    {
        if (comm.Size == 1) { action(); return; }
        Exception? failure = null;
        try { action(); }
        catch (Exception e) when (e is not OutOfMemoryException) { failure = e; }
        Training.Distributed.Communicator.Agree(comm, failure, where);
    }

    // Rank 0's text on every rank.
    private static string BroadcastText(Training.Distributed.ICommunicator comm, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var length = BitConverter.GetBytes(bytes.Length);
        comm.Broadcast(length, 0);
        var buffer = comm.Rank == 0 ? bytes : new byte[BitConverter.ToInt32(length)];
        comm.Broadcast(buffer, 0);
        return System.Text.Encoding.UTF8.GetString(buffer);
    }

    private sealed class SilentObserver : IFineTuneObserver
    {
        public static readonly SilentObserver Instance = new();
        public void Info(string line) { }
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { }
    }

    /// <summary>The suffix of a run's working folder.</summary>
    public const string RunSuffix = ".run";

    // A damaged checkpoint is renamed, not deleted: it is the user's data, and the name keeps it out of later resumes.
    private static void SetAside(string checkpoint)
    {
        string target = checkpoint + ".damaged";
        if (Directory.Exists(target)) target += "-" + Guid.NewGuid().ToString("N")[..8];
        try { Directory.Move(checkpoint, target); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // NaN is a real value here: a run interrupted before its first step has no final loss.
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private static PreparedData PrepareData(FineTuneRequest request, TrainingSettings s, Tokenizers.Tokenizer tokenizer, int context,
        Tokenizers.Chat.ModelChatTemplate? modelChatTemplate)
    {
        string? path = s.Dataset ?? s.RawTextFile;
        if (path == null) throw new UserErrorException("No training data: give --dataset (JSON/JSONL) or --raw-text-file (.txt or folder).");
        var spec = new DataSpec
        {
            DatasetPath = path,
            Kind = s.RawTextFile != null && s.Dataset == null ? DatasetKind.RawText : s.Format == "chat" ? DatasetKind.Chat : null,
            Format = s.Format is "chat" ? null : s.Format,
            EvalDatasetPath = s.EvalDataset,
            EvalFraction = s.EvalSplit,
            Seed = (ulong)s.Seed,
            CutoffLength = s.CutoffLen,
            ContextLength = context,
            OverlapLength = s.OverlapLen,
            NewlineFavorLength = s.NewlineFavorLen,
            HardCutString = s.HardCutString,
            MinChars = s.MinChars,
            AddEosToken = s.AddEosToken,
            TrainOnlyAfter = s.TrainOnlyAfter ?? "",
            ExcessLength = s.ExcessLength,
            Pack = s.Packing,
            ChatTemplate = s.ChatTemplate,
            ModelChatTemplate = modelChatTemplate,
            TrainOnInputs = s.TrainOnInputs,
        };
        return TrainingData.Prepare(spec, tokenizer, request.FormatsFolder ?? FindFormatsFolder());
    }

    // Preference pairs: the training file, and validation pairs from eval_dataset or a seeded eval_split of the rows.
    private static (Training.Preference.PreferenceSet Train, Training.Preference.PreferenceSet? Eval) PreparePreferenceData(TrainingSettings s, Tokenizers.Tokenizer tokenizer, int context)
    {
        if (s.Dataset == null)
            throw new UserErrorException($"objective {s.Objective} needs --dataset: a JSON/JSONL file of rows {{\"prompt\", \"chosen\", \"rejected\"}} (or chat-form message lists).");
        int cutoff = Math.Min(s.CutoffLen, context);
        bool truncate = s.ExcessLength == ExcessLength.Truncate;
        return Training.Preference.PreferenceData.LoadWithEval(s.Dataset, s.EvalDataset, s.EvalSplit, (ulong)s.Seed, tokenizer, cutoff, truncate);
    }

    /// <summary>The shipped formats/ folder: beside the executable, or above the working directory (a source checkout).</summary>
    public static string? FindFormatsFolder()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "formats", "alpaca-format.json"))) return Path.Combine(d.FullName, "formats");
        return null;
    }

    // "q4_0 x 180, f32 x 31; 72.3 MiB held (0.14x their f32 size)": how the projections and the output are stored,
    // and the bytes the base weights hold.
    private static string BaseWeightsSummary(LlamaModel model)
    {
        var packed = model.Layers.SelectMany(l => l.Projections.Select(p => p.Packed)).Append(model.Output).ToList();
        string types = string.Join(", ", packed.GroupBy(p => p.StorageDType.ToString().ToLowerInvariant() + (p.DoubleQuantized ? "+dq" : ""))
            .Select(g => $"{g.Key} x {g.Count()}"));
        long held = model.BaseWeightBytes;
        long f32 = (model.Layers.Sum(l => l.Projections.Sum(p => (long)p.OutFeatures * p.InFeatures)) + (long)model.Config.VocabSize * model.Config.HiddenSize) * 4;
        bool decoded = packed.Any(p => p.StorageDType != Core.Tensors.DType.F32);
        return $"{types}; {held / 1048576.0:F1} MiB held ({(double)held / f32:F2}x their f32 size)" +
               (decoded ? "; non-f32 weights stay as stored and are decoded inside the matmuls" : "; f32 panels, one copy");
    }

    private static double EstimateMemoryGiB(LlamaModel model, TrainingSettings s, long trainable)
    {
        int rank = model.Layers.Max(l => l.Projections.Max(p => p.MaxAdapterRank));
        // A trained embedding (modules_to_save) is held once, as a trainable parameter: not frozen base bytes as well.
        long baseBytes = model.BaseWeightBytes - (model.ModulesToSave.Contains("embed_tokens") ? model.Embedding!.ByteLength : 0);
        var dora = model.Layers.SelectMany(l => l.Projections).SelectMany(p => p.Adapters.Where(a => a.IsDora).Select(a => (p.OutFeatures, p.InFeatures, a.Rank)));
        var estimate = LoraMemoryEstimate.Compute(model.Config, baseBytes, trainable, rank, s.CutoffLen, s.MicroBatchSize,
            model.Output.StorageDType == Core.Tensors.DType.F32, Core.Threading.Threads.Hardware,
            s.Optimizer, LoraMemoryEstimate.OptimizerStateFloats(s.Optimizer, s.Momentum, s.AdamBeta1), dora);
        return estimate.Total(s.GradientCheckpointing) / (1024.0 * 1024 * 1024);
    }

    private static void WriteFullModel(LlamaModel model, string folder)
    {
        var tensors = model.TrainableParameters().Select(p => new KeyValuePair<string, Core.Tensors.Tensor>(p.Name, p.Value));
        Formats.Safetensors.SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    private static void WriteLogAndChart(string folder, TrainingSettings s, Trainer trainer, TrainingOutcome? outcome)
    {
        var log = new Dictionary<string, object?>
        {
            ["outcome"] = outcome,
            ["log_history"] = trainer.History,
        };
        WriteText(Path.Combine(folder, "training_log.json"), JsonSerializer.Serialize(log, Indented));
        WriteText(Path.Combine(folder, "loss_chart.svg"), LossChart.Svg(trainer.History, $"{s.LoraName}: loss by step"));
    }

    private static void RewriteLog(string path, IEnumerable<StepRecord> history)
        => WriteText(path, string.Concat(history.Select(r => JsonSerializer.Serialize(r) + "\n")));

    /// <summary>Writes a text file atomically and durably (temporary name, fsync, rename, fsync of the folder).</summary>
    public static void WriteText(string path, string text) => Formats.Durable.WriteAllText(path, text);
}
