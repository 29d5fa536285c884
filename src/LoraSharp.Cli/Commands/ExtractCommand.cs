// `lorasharp extract`: extracts a LoRA adapter from a fine-tuned model and its base (truncated SVD of each weight
// difference) and prints the share of energy kept per module and overall. Parsing and presentation only.
using System.CommandLine;
using System.Globalization;
using LoraSharp.App;

namespace LoraSharp.Cli.Commands;

internal static class ExtractCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base", "-b") { Description = "Base model (Hugging Face folder or .gguf file).", Required = true };
        var tuned = new Option<string>("--tuned", "-t") { Description = "Fine-tuned model with the same architecture.", Required = true };
        var rank = new Option<int?>("--rank", "-r") { Description = "Rank of every module (or use --energy)." };
        var energy = new Option<double?>("--energy") { Description = "Per-module rank: the smallest keeping this share of the difference's energy, e.g. 0.9." };
        var maxRank = new Option<int>("--max-rank") { Description = "Largest rank --energy may choose.", DefaultValueFactory = _ => 128 };
        var output = new Option<string>("--out", "-o") { Description = "Output PEFT adapter folder.", Required = true };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output." };
        var command = new Command("extract", "Extract a LoRA adapter from a fine-tuned model and its base by truncated SVD of the weight differences.")
        {
            baseModel, tuned, rank, energy, maxRank, output, overwrite,
        };
        command.SetAction(parse => MergeCommand.Run(parse, "extract", sink =>
        {
            var report = ExtractJob.Run(new ExtractJobOptions
            {
                BasePath = parse.GetValue(baseModel)!,
                TunedPath = parse.GetValue(tuned)!,
                Rank = parse.GetValue(rank),
                Energy = parse.GetValue(energy),
                MaxRank = parse.GetValue(maxRank),
                OutPath = parse.GetValue(output)!,
                Overwrite = parse.GetValue(overwrite),
            }, sink);
            var o = parse.InvocationConfiguration.Output;
            foreach (var m in report.Modules)
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{m.Module,-40} rank {m.Rank,4}  energy kept {m.EnergyKept * 100:F2}%"));
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"overall energy kept {report.EnergyKept * 100:F3}% ({report.Modules.Count} modules) -> {Path.GetFullPath(parse.GetValue(output)!)}"));
        }));
        return command;
    }
}
