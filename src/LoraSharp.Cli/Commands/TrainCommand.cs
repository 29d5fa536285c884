// `lorasharp train`: LoRA (or full) fine-tuning with every knob of text-generation-webui's training tab.
// Settings come from --config (JSON/YAML) or --copy-from (an earlier adapter's training_parameters.json); options
// given on the command line override them. Ctrl+C stops after the current step and saves a resumable checkpoint.
// Option help texts come from App's TrainingSettingsHelp, which the web UI's training form shows too.
using System.CommandLine;
using LoraSharp.App;
using LoraSharp.Training;

namespace LoraSharp.Cli.Commands;

internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new Command("train", "Fine-tune a LoRA adapter (or the full model) on raw text, a formatted dataset or a chat dataset.");
        var model = Add(command, new Option<string?>("--model", "-m") { Description = "Base model: Hugging Face folder or .gguf file (default: the embedded default model; with no dataset, runs the default demo fine-tune)." });
        var outputRoot = Add(command, new Option<string>("--output", "-o") { Description = "Folder that holds adapter folders (default: loras).", DefaultValueFactory = _ => "loras" });
        var config = Add(command, new Option<string?>("--config") { Description = "Settings file (.json or .yaml) with training_parameters.json keys." });
        var copyFrom = Add(command, new Option<string?>("--copy-from") { Description = "Copy every setting from an earlier adapter folder's training_parameters.json." });
        var resume = Add(command, new Option<bool>("--resume") { Description = "Continue from the newest checkpoint-N in the adapter folder." });
        var overwrite = Add(command, new Option<bool>("--overwrite") { Description = Help("always_override") });

        var name = Add(command, new Option<string?>("--name") { Description = Help("lora_name") });
        var dataset = Add(command, new Option<string?>("--dataset") { Description = Help("dataset") });
        var evalDataset = Add(command, new Option<string?>("--eval-dataset") { Description = Help("eval_dataset") });
        var format = Add(command, new Option<string?>("--format") { Description = Help("format") });
        var rawText = Add(command, new Option<string?>("--raw-text-file") { Description = Help("raw_text_file") });
        var chatTemplate = Add(command, new Option<string?>("--chat-template") { Description = Help("chat_template") });
        var trainOnInputs = Add(command, new Option<bool?>("--train-on-inputs") { Description = Help("train_on_inputs") });
        var cutoff = Add(command, new Option<int?>("--cutoff-len") { Description = Help("cutoff_len") });
        var overlap = Add(command, new Option<int?>("--overlap-len") { Description = Help("overlap_len") });
        var newline = Add(command, new Option<int?>("--newline-favor-len") { Description = Help("newline_favor_len") });
        var hardCut = Add(command, new Option<string?>("--hard-cut-string") { Description = Help("hard_cut_string") });
        var minChars = Add(command, new Option<int?>("--min-chars") { Description = Help("min_chars") });
        var addEos = Add(command, new Option<bool?>("--add-eos-token") { Description = Help("add_eos_token") });
        var trainOnlyAfter = Add(command, new Option<string?>("--train-only-after") { Description = Help("train_only_after") });
        var evalSplit = Add(command, new Option<double?>("--eval-split") { Description = Help("eval_split") });
        var excess = Add(command, new Option<string?>("--excess-length") { Description = Help("excess_length") });
        var packing = Add(command, new Option<bool?>("--packing") { Description = Help("packing") });

        var micro = Add(command, new Option<int?>("--micro-batch-size") { Description = Help("micro_batch_size") });
        var batch = Add(command, new Option<int?>("--batch-size") { Description = Help("batch_size") });
        var epochs = Add(command, new Option<double?>("--epochs") { Description = Help("epochs") });
        var maxSteps = Add(command, new Option<int?>("--max-steps") { Description = Help("max_steps") });
        var lr = Add(command, new Option<double?>("--learning-rate", "--lr") { Description = Help("learning_rate") });
        var scheduler = Add(command, new Option<string?>("--lr-scheduler") { Description = Help("lr_scheduler_type") });
        var warmup = Add(command, new Option<int?>("--warmup-steps") { Description = Help("warmup_steps") });
        var warmupRatio = Add(command, new Option<double?>("--warmup-ratio") { Description = Help("warmup_ratio") });
        var optimizer = Add(command, new Option<string?>("--optimizer") { Description = Help("optimizer") });
        var weightDecay = Add(command, new Option<double?>("--weight-decay") { Description = Help("weight_decay") });
        var momentum = Add(command, new Option<double?>("--momentum") { Description = Help("momentum") });
        var nesterov = Add(command, new Option<bool?>("--nesterov") { Description = Help("nesterov") });
        var maxGradNorm = Add(command, new Option<double?>("--max-grad-norm") { Description = Help("max_grad_norm") });

        var rank = Add(command, new Option<int?>("--lora-rank", "-r") { Description = Help("lora_rank") });
        var alpha = Add(command, new Option<double?>("--lora-alpha") { Description = Help("lora_alpha") });
        var dropout = Add(command, new Option<double?>("--lora-dropout") { Description = Help("lora_dropout") });
        var targets = Add(command, new Option<string[]?>("--target-modules") { Description = Help("target_modules"), AllowMultipleArgumentsPerToken = true });
        var layers = Add(command, new Option<int[]?>("--layers") { Description = Help("layers_to_transform"), AllowMultipleArgumentsPerToken = true });
        var rankPattern = Add(command, new Option<string?>("--rank-pattern") { Description = Help("rank_pattern") });
        var alphaPattern = Add(command, new Option<string?>("--alpha-pattern") { Description = Help("alpha_pattern") });
        var rslora = Add(command, new Option<bool?>("--use-rslora") { Description = Help("use_rslora") });
        var init = Add(command, new Option<string?>("--init-lora-weights") { Description = Help("init_lora_weights") });
        var full = Add(command, new Option<bool?>("--full-fine-tuning") { Description = Help("full_fine_tuning") });

        var seed = Add(command, new Option<int?>("--seed") { Description = Help("seed") });
        var evalSteps = Add(command, new Option<int?>("--eval-steps") { Description = Help("eval_steps") });
        var saveSteps = Add(command, new Option<int?>("--save-steps") { Description = Help("save_steps") });
        var stopAtLoss = Add(command, new Option<double?>("--stop-at-loss") { Description = Help("stop_at_loss") });
        var patience = Add(command, new Option<int?>("--early-stopping-patience") { Description = Help("early_stopping_patience") });
        var checkpointing = Add(command, new Option<bool?>("--gradient-checkpointing") { Description = Help("gradient_checkpointing") });
        var baseDType = Add(command, new Option<string?>("--base-dtype") { Description = Help("base_dtype") });
        var doubleQuant = Add(command, new Option<bool?>("--double-quant") { Description = Help("double_quant") });

        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var output = parse.InvocationConfiguration.Output;
            bool anyData = parse.GetValue(dataset) != null || parse.GetValue(rawText) != null || parse.GetValue(config) != null || parse.GetValue(copyFrom) != null;
            if (!anyData && parse.GetValue(model) is var demoModel && (demoModel == null || demoModel.EndsWith(App.DefaultModel.DefaultJob.ModelFile, StringComparison.Ordinal)))
                return RunDefault(output, parse.GetValue(outputRoot)!, demoModel, cancel);
            var s = parse.GetValue(config) is { } cfg ? TrainingSettingsFile.Load(cfg)
                : parse.GetValue(copyFrom) is { } from ? TrainingSettingsFile.Load(from) : new TrainingSettings();
            T Pick<T>(Option<T> o, T current) => parse.GetResult(o) is { Implicit: false } ? parse.GetValue(o)! : current;
            int? rankGiven = parse.GetValue(rank);
            s = s with
            {
                LoraName = Pick(name, s.LoraName)!, Dataset = Pick(dataset, s.Dataset), EvalDataset = Pick(evalDataset, s.EvalDataset),
                Format = Pick(format, s.Format), RawTextFile = Pick(rawText, s.RawTextFile),
                ChatTemplate = Pick(chatTemplate, s.ChatTemplate), TrainOnInputs = Pick(trainOnInputs, s.TrainOnInputs) ?? s.TrainOnInputs,
                CutoffLen = Pick(cutoff, s.CutoffLen) ?? s.CutoffLen, OverlapLen = Pick(overlap, s.OverlapLen) ?? s.OverlapLen,
                NewlineFavorLen = Pick(newline, s.NewlineFavorLen) ?? s.NewlineFavorLen, HardCutString = Pick(hardCut, s.HardCutString)!,
                MinChars = Pick(minChars, s.MinChars) ?? s.MinChars, AddEosToken = Pick(addEos, s.AddEosToken) ?? s.AddEosToken,
                TrainOnlyAfter = Pick(trainOnlyAfter, s.TrainOnlyAfter), EvalSplit = Pick(evalSplit, s.EvalSplit) ?? s.EvalSplit,
                ExcessLength = Pick(excess, s.ExcessLength)!, Packing = Pick(packing, s.Packing) ?? s.Packing,
                MicroBatchSize = Pick(micro, s.MicroBatchSize) ?? s.MicroBatchSize, BatchSize = Pick(batch, s.BatchSize) ?? s.BatchSize,
                Epochs = Pick(epochs, s.Epochs) ?? s.Epochs, MaxSteps = Pick(maxSteps, s.MaxSteps) ?? s.MaxSteps,
                LearningRate = Pick(lr, s.LearningRate) ?? s.LearningRate, LrSchedulerType = Pick(scheduler, s.LrSchedulerType)!,
                WarmupSteps = Pick(warmup, s.WarmupSteps) ?? s.WarmupSteps, WarmupRatio = Pick(warmupRatio, s.WarmupRatio) ?? s.WarmupRatio,
                Optimizer = Pick(optimizer, s.Optimizer)!, WeightDecay = Pick(weightDecay, s.WeightDecay) ?? s.WeightDecay,
                Momentum = Pick(momentum, s.Momentum) ?? s.Momentum, Nesterov = Pick(nesterov, s.Nesterov) ?? s.Nesterov,
                MaxGradNorm = Pick(maxGradNorm, s.MaxGradNorm) ?? s.MaxGradNorm,
                LoraRank = rankGiven ?? s.LoraRank,
                LoraAlpha = parse.GetValue(alpha) ?? (rankGiven is { } r ? 2.0 * r : s.LoraAlpha),
                LoraDropout = Pick(dropout, s.LoraDropout) ?? s.LoraDropout, TargetModules = Pick(targets, s.TargetModules) ?? s.TargetModules,
                LayersToTransform = Pick(layers, s.LayersToTransform),
                RankPattern = parse.GetValue(rankPattern) is { } rp ? ParsePattern(rp, "--rank-pattern").ToDictionary(p => p.Key, p => checked((int)p.Value)) : s.RankPattern,
                AlphaPattern = parse.GetValue(alphaPattern) is { } ap ? ParsePattern(ap, "--alpha-pattern") : s.AlphaPattern, UseRsLora = Pick(rslora, s.UseRsLora) ?? s.UseRsLora,
                InitLoraWeights = Pick(init, s.InitLoraWeights)!, FullFineTuning = Pick(full, s.FullFineTuning) ?? s.FullFineTuning,
                Seed = Pick(seed, s.Seed) ?? s.Seed, EvalSteps = Pick(evalSteps, s.EvalSteps) ?? s.EvalSteps,
                SaveSteps = Pick(saveSteps, s.SaveSteps) ?? s.SaveSteps, StopAtLoss = Pick(stopAtLoss, s.StopAtLoss) ?? s.StopAtLoss,
                EarlyStoppingPatience = Pick(patience, s.EarlyStoppingPatience) ?? s.EarlyStoppingPatience,
                GradientCheckpointing = Pick(checkpointing, s.GradientCheckpointing) ?? s.GradientCheckpointing,
                BaseDType = Pick(baseDType, s.BaseDType),
                DoubleQuant = Pick(doubleQuant, s.DoubleQuant) ?? s.DoubleQuant,
                AlwaysOverride = parse.GetValue(overwrite) || s.AlwaysOverride,
            };
            string baseModel = parse.GetValue(model) ?? App.DefaultModel.DefaultJob.FindModel()
                ?? throw new ArgumentException("--model is required (the embedded default model was not found).");
            var request = new FineTuneRequest { Model = baseModel, Settings = s, OutputRoot = parse.GetValue(outputRoot)!, Resume = parse.GetValue(resume) };

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;   // finish the current step, then save a checkpoint
                stop.Cancel();
                System.Console.Error.WriteLine("stopping after the current step...");
            };
            System.Console.CancelKeyPress += onCancel;
            try
            {
                var result = Console.ConsoleProgress.Run($"train {s.LoraName}", sink =>
                    FineTuneJob.Run(request, new Observer(sink), stop.Token), ConsoleProgressOutput(output));
                var o = result.Outcome;
                output.WriteLine($"done: {o.StopReason} after {o.Steps}/{o.TotalSteps} steps in {o.ElapsedSeconds:F1} s; " +
                                 $"final loss {o.FinalLoss:F4}" + (o.FinalEvalLoss is { } e ? (result.InitialEvalLoss is { } e0 ? $", eval loss {e0:F4} -> {e:F4}" : $", eval loss {e:F4}") : ""));
                output.WriteLine($"adapter: {result.AdapterFolder}");
                return 0;
            }
            finally
            {
                System.Console.CancelKeyPress -= onCancel;
            }
        })));
        return command;
    }

    // The embedded default: teach the shipped tiny model "what number comes after N?" and show held-out accuracy.
    private static int RunDefault(TextWriter output, string outputRoot, string? model, CancellationToken cancel)
    {
        output.WriteLine("No dataset given: running the embedded default fine-tune (lorasharp train --help for real data).");
        var result = Console.ConsoleProgress.Run("train default", sink =>
            App.DefaultModel.DefaultJob.Run(outputRoot, new Observer(sink), model, cancel), ConsoleProgressOutput(output));
        var o = result.FineTune.Outcome;
        output.WriteLine($"done: {o.Steps} steps in {o.ElapsedSeconds:F1} s, final loss {o.FinalLoss:F4}");
        output.WriteLine($"held-out exact match: {100 * result.Before:F0}% before -> {100 * result.After:F0}% after fine-tuning");
        output.WriteLine($"adapter: {result.FineTune.AdapterFolder}");
        return 0;
    }

    // Plain lines when the output is not the real console (tests) or not interactive.
    private static TextWriter? ConsoleProgressOutput(TextWriter output) =>
        ReferenceEquals(output, System.Console.Out) && Console.ConsoleProgress.IsInteractive ? null : output;

    // "q_proj=4,down_proj=16" -> {q_proj: 4, down_proj: 16}
    private static Dictionary<string, double> ParsePattern(string text, string option)
    {
        var result = new Dictionary<string, double>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = item.IndexOf('=');
            if (eq <= 0 || !double.TryParse(item[(eq + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v))
                throw new ArgumentException($"{option}: '{item}' is not module=number (for example q_proj=4).");
            result[item[..eq]] = v;
        }
        return result;
    }

    private static string Help(string setting) => App.Settings.TrainingSettingsHelp.For(setting);

    private static Option<T> Add<T>(Command command, Option<T> option)
    {
        command.Options.Add(option);
        return option;
    }

    private sealed class Observer(App.Progress.IProgressSink sink) : IFineTuneObserver
    {
        public void Info(string line) => sink.Log(line);

        public void Started(int totalSteps, int resumedAtStep) => sink.SetTotal(totalSteps);

        public void Step(StepRecord r)
        {
            string eval = r.EvalLoss is { } e ? $" eval {e:F4}" : "";
            sink.Report(r.Step, $"epoch {r.Epoch:F2} loss {r.Loss:F4}{eval} lr {r.LearningRate:E2} {r.TokensPerSecond:F0} tok/s " +
                                $"elapsed {TimeSpan.FromSeconds(r.ElapsedSeconds):mm\\:ss} left {TimeSpan.FromSeconds(r.RemainingSeconds):mm\\:ss}");
        }
    }
}
