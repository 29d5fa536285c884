// `lorasharp make-default-model`: reproduces the embedded default base model (models/default/lorasharp-tiny.gguf)
// by pretraining it from scratch on the generated corpus with LoraSharp's full-training mode.
using System.CommandLine;
using LoraSharp.App.DefaultModel;

namespace LoraSharp.Cli.Commands;

internal static class MakeDefaultModelCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "GGUF file to write.", DefaultValueFactory = _ => Path.Combine("models", "default", DefaultJob.ModelFile) };
        var steps = new Option<int>("--steps") { Description = "Pretraining steps (32 sequences of 128 tokens each).", DefaultValueFactory = _ => 400 };
        var seed = new Option<int>("--seed") { Description = "Seed of the corpus and the initialisation.", DefaultValueFactory = _ => 1 };
        var command = new Command("make-default-model", "Pretrain the embedded default model from scratch on the generated corpus (reproduces models/default).");
        command.Options.Add(output);
        command.Options.Add(steps);
        command.Options.Add(seed);
        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var o = parse.InvocationConfiguration.Output;
            var outcome = Console.ConsoleProgress.Run("pretrain", sink =>
            {
                sink.SetTotal(parse.GetValue(steps));
                return DefaultModelBuilder.Build(parse.GetValue(output)!, parse.GetValue(steps), parse.GetValue(seed),
                    r => sink.Report(r.Step, $"loss {r.Loss:F4} {r.TokensPerSecond:F0} tok/s"), cancel);
            }, ReferenceEquals(o, System.Console.Out) && Console.ConsoleProgress.IsInteractive ? null : o);
            o.WriteLine($"wrote {parse.GetValue(output)} after {outcome.Steps} steps, final loss {outcome.FinalLoss:F4}, {outcome.ElapsedSeconds:F0} s");
            return 0;
        })));
        return command;
    }
}
