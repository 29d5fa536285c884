// `lorasharp combine`: combines adapters (each PATH[:WEIGHT]) into one PEFT adapter by linear, cat or svd.
// Parsing and presentation only; the work is CombineJob.
using System.CommandLine;
using LoraSharp.App;

namespace LoraSharp.Cli.Commands;

internal static class CombineCommand
{
    public static Command Create()
    {
        var adapter = new Option<string[]>("--adapter", "-a")
        {
            Description = "Adapter as PATH[:WEIGHT] (PEFT folder or GGUF LoRA file); repeat for several.",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var method = new Option<string>("--method")
        {
            Description = "linear (equal ranks), cat (ranks add), svd (weighted sum of deltas re-factored), ties, dare_linear, dare_ties, magnitude_prune " +
                          "(on A and B, equal ranks) or ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd (on the deltas, then SVD).",
            DefaultValueFactory = _ => "linear",
        };
        var density = new Option<double>("--density") { Description = "ties/dare/magnitude_prune: share of each task tensor kept (default 1 = no pruning).", DefaultValueFactory = _ => 1.0 };
        var signMethod = new Option<string>("--majority-sign-method") { Description = "ties/dare_ties: total (default) or frequency.", DefaultValueFactory = _ => "total" };
        var seed = new Option<int>("--seed") { Description = "dare: seed of the random pruning (default 0)." };
        var rank = new Option<int?>("--rank", "-r") { Description = "svd: target rank (default: the largest input rank)." };
        var output = new Option<string>("--out", "-o") { Description = "Output PEFT adapter folder.", Required = true };
        var model = new Option<string?>("--model", "-m") { Description = "Base model; needed only for GGUF LoRA inputs." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output." };
        var command = new Command("combine", "Combine several LoRA adapters with weights into one adapter (PEFT add_weighted_adapter: linear, cat, svd, ties, dare, magnitude_prune).")
        {
            adapter, method, rank, output, model, overwrite, density, signMethod, seed,
        };
        command.SetAction(parse => MergeCommand.Run(parse, "combine", sink =>
        {
            var combined = CombineJob.Run(new CombineJobOptions
            {
                Adapters = parse.GetValue(adapter)!,
                Method = parse.GetValue(method)!,
                Rank = parse.GetValue(rank),
                Density = parse.GetValue(density),
                MajoritySignMethod = parse.GetValue(signMethod)!,
                Seed = parse.GetValue(seed),
                OutPath = parse.GetValue(output)!,
                ModelPath = parse.GetValue(model),
                Overwrite = parse.GetValue(overwrite),
            }, sink);
            parse.InvocationConfiguration.Output.WriteLine($"wrote {combined.Modules.Count} modules to {combined.Source}");
        }));
        return command;
    }
}
