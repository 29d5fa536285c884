// `lorasharp train`: LoRA (or full) fine-tuning with every knob of text-generation-webui's training tab.
// Settings come from --config (JSON/YAML) or --copy-from (an earlier adapter's training_parameters.json); options
// given on the command line override them. Ctrl+C or SIGTERM stops after the current step and saves a resumable checkpoint.
// Every setting's option is made from TrainingSettingsSchema (name, type, help, default, aliases), the list the web
// form is built from too, and given options reach the settings through the same parser as a settings file.
using System.CommandLine;
using LoraSharp.App;
using System.Text.Json.Nodes;
using LoraSharp.Core;
using LoraSharp.Training;
using LoraSharp.Training.Settings;

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

        var settingOptions = TrainingSettingsSchema.All.Select(info => (Info: info, Option: SettingOption(info))).ToList();
        foreach (var (_, option) in settingOptions) command.Options.Add(option);

        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () => Distributed(parse.InvocationConfiguration.Error, comm =>
        {
            // Under mpirun every rank runs this; rank 0 alone prints (and writes, in FineTuneJob).
            var output = comm.Rank == 0 ? parse.InvocationConfiguration.Output : TextWriter.Null;
            bool Given(string setting) => parse.GetResult(settingOptions.Single(o => o.Info.Name == setting).Option) is { Implicit: false };
            bool anyData = Given("dataset") || Given("raw_text_file") || parse.GetValue(config) != null || parse.GetValue(copyFrom) != null;
            if (!anyData && parse.GetValue(model) is var demoModel && (demoModel == null || demoModel.EndsWith(App.DefaultModel.DefaultJob.ModelFile, StringComparison.Ordinal)))
                return comm.Size > 1 ? throw new UserErrorException("The default demo fine-tune runs in one process; under mpirun give --dataset or --raw-text-file.") : RunDefault(output, parse.GetValue(outputRoot)!, demoModel, cancel,
                    Given("max_steps") ? (int)parse.GetResult(settingOptions.Single(o => o.Info.Name == "max_steps").Option)!.GetValueOrDefault<object?>()! : null);
            var s = parse.GetValue(config) is { } cfg ? TrainingSettingsFile.Load(cfg)
                : parse.GetValue(copyFrom) is { } from ? TrainingSettingsFile.Load(from) : new TrainingSettings();
            var given = new JsonObject();
            foreach (var (info, option) in settingOptions)
                if (parse.GetResult(option) is { Implicit: false })
                    given[info.Name] = ToJson(info, parse.GetResult(option)!.GetValueOrDefault<object?>());
            s = TrainingSettingsFile.Apply(s, given, "command line");
            string baseModel = parse.GetValue(model) ?? App.DefaultModel.DefaultJob.FindModel()
                ?? throw new UserErrorException("--model is required (the embedded default model was not found).");
            var request = new FineTuneRequest { Model = baseModel, Settings = s, OutputRoot = parse.GetValue(outputRoot)!, Resume = parse.GetValue(resume), Communicator = comm };

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;   // finish the current step, then save a checkpoint
                stop.Cancel();
                if (comm.Rank == 0) System.Console.Error.WriteLine("stopping after the current step...");
            };
            System.Console.CancelKeyPress += onCancel;
            // SIGTERM (kill, Slurm preemption, docker stop) stops the same way as Ctrl+C: after the step, with a checkpoint.
            using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                stop.Cancel();
                if (comm.Rank == 0)
                    System.Console.Error.WriteLine(comm.Size > 1
                        ? "SIGTERM: mpirun is ending the job (a rank failed or the job was stopped); finishing the step to save a checkpoint if it waits, otherwise the last checkpoint is intact: continue with --resume."
                        : "SIGTERM: stopping after the current step...");
            });
            try
            {
                var result = Console.ConsoleProgress.Run($"train {s.LoraName}", sink =>
                    FineTuneJob.Run(request, new Observer(sink), stop.Token), ConsoleProgressOutput(output));
                var o = result.Outcome;
                output.WriteLine($"done: {o.StopReason} after {o.Steps}/{o.TotalSteps} steps in {o.ElapsedSeconds:F1} s; " +
                                 $"final loss {o.FinalLoss:F4}" + (o.FinalEvalLoss is { } e ? (result.InitialEvalLoss is { } e0 ? $", eval loss {e0:F4} -> {e:F4}" : $", eval loss {e:F4}") : ""));
                output.WriteLine(o.StopReason == "interrupted"
                    ? $"not finished: checkpoints are in {result.AdapterFolder}; add --resume to the same command to continue"
                    : $"adapter: {result.AdapterFolder}");
                return 0;
            }
            finally
            {
                System.Console.CancelKeyPress -= onCancel;
            }
        }))));
        return command;
    }

    // Runs body with the job's communicator (one process unless mpirun started several ranks). A failure every rank
    // agreed on (RankFailedException) is printed by rank 0 and each rank leaves through MPI_Finalize; any other
    // failure of one rank is printed with its rank and ends the whole job (MPI_Abort), so no rank waits for it.
    private static int Distributed(TextWriter error, Func<Training.Distributed.ICommunicator, int> body)
    {
        var comm = Training.Distributed.Communicator.FromEnvironment();
        if (comm.Size == 1) return body(comm);
        int code;
        try
        {
            code = body(comm);
        }
        catch (Training.Distributed.RankFailedException) when (comm.Rank != 0)
        {
            code = CommandRunner.UserError;   // rank 0 prints it
        }
        catch (Exception e) when (e is not Training.Distributed.RankFailedException)
        {
            error.WriteLine($"error: rank {comm.Rank} of {comm.Size}: {App.UserErrors.Unwrap(e).Message}");
            error.WriteLine("ending every rank of the job (MPI_Abort); the last checkpoint is intact, continue with --resume.");
            error.Flush();
            comm.Abort(App.UserErrors.IsExpected(e) ? CommandRunner.UserError : CommandRunner.InternalError);
            throw;
        }
        catch (Training.Distributed.RankFailedException)
        {
            comm.Dispose();
            throw;
        }
        comm.Dispose();
        return code;
    }

    // The embedded default: teach the shipped tiny model "what number comes after N?" and show held-out accuracy.
    private static int RunDefault(TextWriter output, string outputRoot, string? model, CancellationToken cancel, int? maxSteps = null)
    {
        output.WriteLine("No dataset given: running the embedded default fine-tune (lorasharp train --help for real data).");
        var result = Console.ConsoleProgress.Run("train default", sink =>
            App.DefaultModel.DefaultJob.Run(outputRoot, new Observer(sink), model, cancel, maxSteps), ConsoleProgressOutput(output));
        var o = result.FineTune.Outcome;
        output.WriteLine($"done: {o.Steps} steps in {o.ElapsedSeconds:F1} s, final loss {o.FinalLoss:F4}");
        output.WriteLine($"held-out exact match: {100 * result.Before:F0}% before -> {100 * result.After:F0}% after fine-tuning");
        output.WriteLine($"adapter: {result.FineTune.AdapterFolder}");
        return 0;
    }

    // Plain lines when the output is not the real console (tests) or not interactive.
    private static TextWriter? ConsoleProgressOutput(TextWriter output) =>
        ReferenceEquals(output, System.Console.Out) && Console.ConsoleProgress.IsInteractive ? null : output;

    // One option per setting, typed by its kind: System.CommandLine parses numbers and flags; lists take several values.
    private static Option SettingOption(SettingInfo info)
    {
        string[] aliases = [.. info.CliAliases];
        string help = TrainingSettingsSchema.Describe(info);
        return info.Kind switch
        {
            SettingKind.Integer => new Option<int?>(info.Cli, aliases) { Description = help },
            SettingKind.Number => new Option<double?>(info.Cli, aliases) { Description = help },
            SettingKind.Boolean => new Option<bool?>(info.Cli, aliases) { Description = help },
            SettingKind.List => new Option<string[]?>(info.Cli, aliases) { Description = help, AllowMultipleArgumentsPerToken = true },
            SettingKind.IntegerList => new Option<int[]?>(info.Cli, aliases) { Description = help, AllowMultipleArgumentsPerToken = true },
            _ => new Option<string?>(info.Cli, aliases) { Description = help },
        };
    }

    // A parsed option value as the settings JSON holds it; "q_proj=4,down_proj=16" -> {"q_proj": 4, "down_proj": 16}.
    private static JsonNode? ToJson(SettingInfo info, object? value) => value switch
    {
        null => null,
        string text when info.Kind == SettingKind.Pattern => ParsePattern(text, info.Cli),
        string[] items => new JsonArray([.. items.SelectMany(i => i.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(i => (JsonNode)i)]),
        int[] numbers => new JsonArray([.. numbers.Select(n => (JsonNode)n)]),
        int i => i,
        double d => d,
        bool b => b,
        string text => text,
        _ => throw new InvalidOperationException($"{info.Cli}: unexpected option value type {value.GetType().Name}."),
    };

    private static JsonObject ParsePattern(string text, string option)
    {
        var result = new JsonObject();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = item.IndexOf('=');
            if (eq <= 0 || !double.TryParse(item[(eq + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v))
                throw new UserErrorException($"{option}: '{item}' is not module=number (for example q_proj=4).");
            result[item[..eq].Trim()] = v;
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
