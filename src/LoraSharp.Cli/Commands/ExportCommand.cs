// `lorasharp export`: writes an adapter as a llama.cpp GGUF LoRA file (general.type adapter, adapter.lora.alpha,
// blk.N.<name>.weight.lora_a / .lora_b, q/k rows in GGUF order). Parsing and presentation only; the work is ExportJob.
using System.CommandLine;
using LoraSharp.App;

namespace LoraSharp.Cli.Commands;

internal static class ExportCommand
{
    public static Command Create()
    {
        var adapter = new Option<string>("--adapter", "-a") { Description = "Adapter to export (PEFT folder).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Output .gguf file.", Required = true };
        var model = new Option<string?>("--model", "-m") { Description = "Base model for its config (default: the adapter's base_model_name_or_path when it is a local path)." };
        var dtype = new Option<string>("--dtype") { Description = "f32 or f16.", DefaultValueFactory = _ => "f32" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output." };
        var toLora = new Option<bool>("--to-lora") { Description = "Convert a DoRA adapter to a plain LoRA (SVD of its effective change; the error is printed). Needed for DoRA: GGUF LoRA has no magnitude vector. Also converts a PiSSA/OLoRA adapter saved unconverted, exactly, on the original base given with --model (rank 2r)." };
        var rank = new Option<int?>("--rank") { Description = "With --to-lora: rank of the plain LoRA (default: the adapter's)." };
        var format = new Option<string>("--format") { Description = "gguf (llama.cpp LoRA file) or peft (with --to-lora: the converted adapter as a PEFT folder).", DefaultValueFactory = _ => "gguf" };
        var ollama = new Option<bool>("--ollama") { Description = "Also write an Ollama Modelfile beside the output (chat template and stop tokens translated; docs/getting-started.md)." };
        var command = new Command("export", "Export a LoRA adapter to llama.cpp's GGUF LoRA format (DoRA: with --to-lora).")
        {
            adapter, output, model, dtype, overwrite, toLora, rank, format, ollama,
        };
        command.SetAction(parse => MergeCommand.Run(parse, "export", sink =>
        {
            var (w, conversion) = ExportJob.RunWithReport(new ExportJobOptions
            {
                ToLora = parse.GetValue(toLora),
                Rank = parse.GetValue(rank),
                Format = parse.GetValue(format)!,
                AdapterPath = parse.GetValue(adapter)!,
                OutPath = parse.GetValue(output)!,
                ModelPath = parse.GetValue(model),
                DType = parse.GetValue(dtype)!,
                Overwrite = parse.GetValue(overwrite),
                Ollama = parse.GetValue(ollama),
            }, sink);
            if (conversion != null)
                parse.InvocationConfiguration.Output.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"DoRA converted to LoRA: relative error {conversion.RelativeError:E3} (||dW - B'A'||_F / ||dW||_F over all modules; worst module {conversion.Modules.Max(m => m.RelativeError):E3})"));
            parse.InvocationConfiguration.Output.WriteLine($"exported {w.Modules.Count} modules to {Path.GetFullPath(parse.GetValue(output)!)}");
        }));
        return command;
    }
}
