// `lorasharp train`: LoRA (or full) fine-tuning with every knob of text-generation-webui's training tab.
// Settings come from --config (JSON/YAML) or --copy-from (an earlier adapter's training_parameters.json); options
// given on the command line override them. Ctrl+C stops after the current step and saves a resumable checkpoint.
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
        var overwrite = Add(command, new Option<bool>("--overwrite") { Description = "Replace an existing adapter folder of the same name (always_override)." });

        var name = Add(command, new Option<string?>("--name") { Description = "Adapter name (lora_name): the output folder." });
        var dataset = Add(command, new Option<string?>("--dataset") { Description = "Formatted or chat dataset (JSON array or JSONL)." });
        var evalDataset = Add(command, new Option<string?>("--eval-dataset") { Description = "Validation dataset file." });
        var format = Add(command, new Option<string?>("--format") { Description = "Format file or name (alpaca, alpaca-chatbot, ChatML, llama2-chat, vicuna) or 'chat'." });
        var rawText = Add(command, new Option<string?>("--raw-text-file") { Description = "Raw text: a .txt file or a folder of them." });
        var cutoff = Add(command, new Option<int?>("--cutoff-len") { Description = "Longest sequence in tokens (default 256)." });
        var overlap = Add(command, new Option<int?>("--overlap-len") { Description = "Raw text: tokens shared by consecutive chunks (default 128)." });
        var newline = Add(command, new Option<int?>("--newline-favor-len") { Description = "Raw text: prefer cuts at newlines within N characters (default 128)." });
        var hardCut = Add(command, new Option<string?>("--hard-cut-string") { Description = "Raw text: no chunk spans this string (default three newlines)." });
        var minChars = Add(command, new Option<int?>("--min-chars") { Description = "Raw text: ignore blocks of at most N characters." });
        var addEos = Add(command, new Option<bool?>("--add-eos-token") { Description = "Add EOS at the end of each block/sample." });
        var trainOnlyAfter = Add(command, new Option<string?>("--train-only-after") { Description = "Train only on text after this marker (e.g. '### Response:')." });
        var evalSplit = Add(command, new Option<double?>("--eval-split") { Description = "Hold out this fraction for validation when no eval dataset is given." });
        var excess = Add(command, new Option<string?>("--excess-length") { Description = "Samples longer than cutoff: drop or truncate (default drop)." });
        var packing = Add(command, new Option<bool?>("--packing") { Description = "Pack short samples into cutoff-length sequences." });

        var micro = Add(command, new Option<int?>("--micro-batch-size") { Description = "Sequences per forward/backward (default 4)." });
        var batch = Add(command, new Option<int?>("--batch-size") { Description = "Sequences per optimizer step (default 128; accumulation = batch / micro)." });
        var epochs = Add(command, new Option<double?>("--epochs") { Description = "Passes over the data (default 3)." });
        var maxSteps = Add(command, new Option<int?>("--max-steps") { Description = "Stop after N optimizer steps (overrides epochs)." });
        var lr = Add(command, new Option<double?>("--learning-rate", "--lr") { Description = "Peak learning rate (default 3e-4)." });
        var scheduler = Add(command, new Option<string?>("--lr-scheduler") { Description = "constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial, inverse_sqrt." });
        var warmup = Add(command, new Option<int?>("--warmup-steps") { Description = "Warm-up steps (default 100)." });
        var warmupRatio = Add(command, new Option<double?>("--warmup-ratio") { Description = "Warm-up as a fraction of all steps." });
        var optimizer = Add(command, new Option<string?>("--optimizer") { Description = "adamw, adam, sgd, adafactor, lion (default adamw)." });
        var weightDecay = Add(command, new Option<double?>("--weight-decay") { Description = "Weight decay (default 0)." });
        var momentum = Add(command, new Option<double?>("--momentum") { Description = "SGD momentum." });
        var nesterov = Add(command, new Option<bool?>("--nesterov") { Description = "SGD Nesterov momentum." });
        var maxGradNorm = Add(command, new Option<double?>("--max-grad-norm") { Description = "Clip gradients to this global norm (default 1; 0 = off)." });

        var rank = Add(command, new Option<int?>("--lora-rank", "-r") { Description = "LoRA rank (default 32)." });
        var alpha = Add(command, new Option<double?>("--lora-alpha") { Description = "LoRA alpha (default 2 x rank)." });
        var dropout = Add(command, new Option<double?>("--lora-dropout") { Description = "LoRA dropout (default 0.05)." });
        var targets = Add(command, new Option<string[]?>("--target-modules") { Description = "q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, or all-linear.", AllowMultipleArgumentsPerToken = true });
        var layers = Add(command, new Option<int[]?>("--layers") { Description = "Layers to adapt (default all).", AllowMultipleArgumentsPerToken = true });
        var rankPattern = Add(command, new Option<string?>("--rank-pattern") { Description = "Per-module ranks (PEFT rank_pattern), e.g. q_proj=4,down_proj=16." });
        var alphaPattern = Add(command, new Option<string?>("--alpha-pattern") { Description = "Per-module alphas (PEFT alpha_pattern), e.g. q_proj=8." });
        var rslora = Add(command, new Option<bool?>("--use-rslora") { Description = "Scale by alpha/sqrt(r) (rsLoRA)." });
        var init = Add(command, new Option<string?>("--init-lora-weights") { Description = "default or gaussian." });
        var full = Add(command, new Option<bool?>("--full-fine-tuning") { Description = "Train every weight instead of an adapter." });

        var seed = Add(command, new Option<int?>("--seed") { Description = "Seed for init, shuffling and dropout (default 42)." });
        var evalSteps = Add(command, new Option<int?>("--eval-steps") { Description = "Evaluate every N steps (default 100)." });
        var saveSteps = Add(command, new Option<int?>("--save-steps") { Description = "Save checkpoint-N every N steps (default 0 = never)." });
        var stopAtLoss = Add(command, new Option<double?>("--stop-at-loss") { Description = "Stop when the training loss reaches this value." });
        var patience = Add(command, new Option<int?>("--early-stopping-patience") { Description = "Stop after N evaluations without a better validation loss." });
        var checkpointing = Add(command, new Option<bool?>("--gradient-checkpointing") { Description = "Recompute activations in the backward (less memory)." });
        var baseDType = Add(command, new Option<string?>("--base-dtype") { Description = BaseDTypeHelp.BaseDType });
        var doubleQuant = Add(command, new Option<bool?>("--double-quant") { Description = BaseDTypeHelp.DoubleQuant });

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
