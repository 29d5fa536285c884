// `lorasharp sweep --config sweep.yaml`: train a grid or list of runs one after another and write a results table
// (CSV + Markdown) and plots; the work is App.Sweeps.SweepJob. Running the same command again resumes: finished runs
// are skipped and an interrupted run continues from its checkpoint. Ctrl+C or SIGTERM stops after the current step.
// Progress is plain lines (one block per run), also on a terminal: a sweep is long and its log is worth keeping.
using System.CommandLine;
using LoraSharp.App;
using LoraSharp.App.Sweeps;
using LoraSharp.Training;

namespace LoraSharp.Cli.Commands;

internal static class SweepCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config", "-c") { Description = "Sweep config (.yaml or .json): model, settings, grid and/or runs, metric (docs/experiments.md).", Required = true };
        var output = new Option<string?>("--output", "-o") { Description = "Output folder (default: sweeps/<config file name>): adapter folders, sweep_state.json, results.csv, results.md, plots/." };
        var model = new Option<string?>("--model", "-m") { Description = "Base model overriding the config's model (Hugging Face folder or .gguf)." };
        var restart = new Option<bool>("--restart") { Description = "Run every run again, ignoring the recorded results in the output folder." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Check the config and list the runs without training." };
        var noPlots = new Option<bool>("--no-plots") { Description = "Write the tables only." };

        var command = new Command("sweep", "Train a grid or list of runs (any training setting as an axis) and compare them in a table and plots; resumable.");
        foreach (var o in new Option[] { config, output, model, restart, dryRun, noPlots }) command.Options.Add(o);
        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var w = parse.InvocationConfiguration.Output;
            string cfg = parse.GetValue(config)!;
            var request = new SweepRequest
            {
                ConfigPath = cfg,
                OutputFolder = parse.GetValue(output) ?? Path.Combine("sweeps", Path.GetFileNameWithoutExtension(cfg)),
                Model = parse.GetValue(model),
                Restart = parse.GetValue(restart),
                Plots = !parse.GetValue(noPlots),
            };
            if (parse.GetValue(dryRun))
            {
                var (_, m, runs) = SweepJob.Plan(request);
                w.WriteLine($"{runs.Count} runs of {m}:");
                foreach (var r in runs) w.WriteLine($"  {r.Name}: " + string.Join(", ", r.Values.Select(v => $"{v.Key}={v.Value}")));
                return 0;
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
                System.Console.Error.WriteLine("stopping after the current step...");
            };
            System.Console.CancelKeyPress += onCancel;
            using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                stop.Cancel();
                System.Console.Error.WriteLine("SIGTERM: stopping after the current step...");
            });
            try
            {
                var result = SweepJob.Run(request, new Observer(w), stop.Token);
                if (result.Interrupted)
                {
                    w.WriteLine($"interrupted: {result.Results.Count} of {result.Runs.Count} runs finished; run the same command again to continue.");
                    return 130;
                }
                w.WriteLine($"done: {result.Runs.Count} runs");
                w.WriteLine(File.ReadAllText(Path.Combine(result.OutputFolder, "results.md")));
                foreach (var f in result.Files) w.WriteLine($"wrote {f}");
                return 0;
            }
            finally
            {
                System.Console.CancelKeyPress -= onCancel;
            }
        })));
        return command;
    }

    private sealed class Observer(TextWriter output) : ISweepObserver
    {
        public void Info(string line) => output.WriteLine(line);

        public IFineTuneObserver RunStarted(SweepRun run, int total, bool resuming)
        {
            output.WriteLine($"run {run.Index}/{total} {run.Name}" + (resuming ? " (resuming from its checkpoint)" : ""));
            return new RunObserver(new Console.ConsoleProgress.PlainSink($"  {run.Name}", output));
        }

        public void RunFinished(SweepRun run, SweepRunResult r) =>
            output.WriteLine($"run {run.Index} {run.Name}: final loss {r.FinalLoss:F4}" +
                             (r.BestEvalLoss is { } e ? $", best eval loss {e:F4}" : "") +
                             (r.ExactMatch is { } em ? $", exact match {100 * em:F0}%" : "") +
                             (r.Perplexity is { } p ? $", perplexity {p:F3}" : ""));
    }

    private sealed class RunObserver(App.Progress.IProgressSink sink) : IFineTuneObserver
    {
        public void Info(string line) { }   // the per-run model/data summary repeats for every run; the table has what matters

        public void Started(int totalSteps, int resumedAtStep) => sink.SetTotal(totalSteps);

        public void Step(StepRecord r) =>
            sink.Report(r.Step, $"loss {r.Loss:F4}" + (r.EvalLoss is { } e ? $" eval {e:F4}" : "") + $" {r.TokensPerSecond:F0} tok/s");
    }
}
