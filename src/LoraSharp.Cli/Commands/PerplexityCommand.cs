// `lorasharp perplexity`: sliding-window perplexity of a text file, as the text-generation-webui tab computes it.
using System.CommandLine;
using LoraSharp.App;

namespace LoraSharp.Cli.Commands;

internal static class PerplexityCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Hugging Face model folder or .gguf file.", Required = true };
        var adapters = new Option<string[]>("--adapter", "-a") { Description = "PEFT adapter folder, optionally path[:scale]. Repeatable." };
        var file = new Option<string>("--file", "-f") { Description = "UTF-8 text file to evaluate.", Required = true };
        var stride = new Option<int>("--stride") { Description = "Window advance in tokens (default: half the window).", DefaultValueFactory = _ => 0 };
        var maxLength = new Option<int>("--max-length") { Description = "Window length in tokens (default: the model's context).", DefaultValueFactory = _ => 0 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Evaluate only the first N tokens of the file (0 = all).", DefaultValueFactory = _ => 0 };
        var baseDType = new Option<string?>("--base-dtype") { Description = Training.Settings.TrainingSettingsSchema.For("base_dtype") };
        var doubleQuant = new Option<bool>("--double-quant") { Description = Training.Settings.TrainingSettingsSchema.For("double_quant") };

        var command = new Command("perplexity", "Measure the perplexity of a text file with a sliding window (context length and stride).");
        foreach (var o in new Option[] { model, adapters, file, stride, maxLength, maxTokens, baseDType, doubleQuant }) command.Options.Add(o);
        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var output = parse.InvocationConfiguration.Output;
            var request = new PerplexityRequest
            {
                Model = parse.GetValue(model)!,
                Adapters = (parse.GetValue(adapters) ?? []).Select(AdapterSpec.Parse).ToArray(),
                File = parse.GetValue(file)!,
                Stride = parse.GetValue(stride),
                MaxLength = parse.GetValue(maxLength),
                MaxTokens = parse.GetValue(maxTokens),
                BaseDType = parse.GetValue(baseDType),
                DoubleQuant = parse.GetValue(doubleQuant),
            };
            var r = Console.ConsoleProgress.Run("perplexity", sink =>
                PerplexityJob.Run(request, (done, total) => { sink.SetTotal(total); sink.Report(done, "windows"); }, cancel), output);
            output.WriteLine($"perplexity {r.Perplexity:F4} (mean of {r.Windows} window NLLs; per-token {r.TokenWeightedPerplexity:F4} over {r.ScoredTokens} of {r.Tokens} tokens)");
            return 0;
        })));
        return command;
    }
}
