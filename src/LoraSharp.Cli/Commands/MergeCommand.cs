// `lorasharp merge`: merges one or more adapters (each PATH[:SCALE]) into a base model and writes a Hugging Face
// folder or a GGUF file. Parsing and presentation only; the work is MergeJob. Also holds the small runner the
// adapter verbs share (CommandRunner's exit codes: 1 for bad input, 70 for a bug).
using System.CommandLine;
using LoraSharp.App;
using LoraSharp.App.Progress;
using LoraSharp.Cli.Console;

namespace LoraSharp.Cli.Commands;

internal static class MergeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Base model: Hugging Face folder or .gguf file.", Required = true };
        var adapter = new Option<string[]>("--adapter", "-a")
        {
            Description = "Adapter to merge as PATH[:SCALE] (PEFT folder or GGUF LoRA file); repeat for several.",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<string>("--out", "-o") { Description = "Output folder (hf) or .gguf file.", Required = true };
        var format = new Option<string?>("--format") { Description = "hf or gguf (default: gguf when --out ends in .gguf, else hf)." };
        var dtype = new Option<string?>("--dtype") { Description = "Output dtype of the matrices: f32, f16, bf16 (hf) or f32, f16, q8_0, q4_0 (gguf; re-quantizing loses quality, see docs/adapters.md). Default: the base's." };
        var safe = new Option<bool>("--safe") { Description = "Check every merged value is finite (also after rounding) before writing." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output." };
        var ollama = new Option<bool>("--ollama") { Description = "Also write an Ollama Modelfile beside the output (chat template and stop tokens translated; docs/getting-started.md)." };
        var command = new Command("merge", "Merge LoRA adapters into a base model and write a new Hugging Face folder or GGUF file.")
        {
            model, adapter, output, format, dtype, safe, overwrite, ollama,
        };
        command.SetAction(parse => Run(parse, "merge", sink =>
        {
            var report = MergeJob.Run(new MergeJobOptions
            {
                ModelPath = parse.GetValue(model)!,
                Adapters = parse.GetValue(adapter)!,
                OutPath = parse.GetValue(output)!,
                Format = parse.GetValue(format),
                DType = parse.GetValue(dtype),
                Safe = parse.GetValue(safe),
                Overwrite = parse.GetValue(overwrite),
                Ollama = parse.GetValue(ollama),
            }, sink);
            parse.InvocationConfiguration.Output.WriteLine($"merged {report.MergedWeights} weights ({report.DType}) into {report.OutputPath}");
        }));
        return command;
    }

    /// <summary>Runs <paramref name="work"/> under <see cref="CommandRunner"/>: a user error prints "error: ..." and returns 1, a bug returns 70.</summary>
    internal static int Run(ParseResult parse, string title, Action<IProgressSink> work) =>
        CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            work(new ConsoleProgress.PlainSink(title, parse.InvocationConfiguration.Output));
            return 0;
        });
}
