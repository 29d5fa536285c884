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
        var ollama = new Option<bool>("--ollama") { Description = "Also write an Ollama Modelfile beside the output (chat template and stop tokens translated; docs/getting-started.md)." };
        var command = new Command("export", "Export a LoRA adapter to llama.cpp's GGUF LoRA format.")
        {
            adapter, output, model, dtype, overwrite, ollama,
        };
        command.SetAction(parse => MergeCommand.Run(parse, "export", sink =>
        {
            var w = ExportJob.Run(new ExportJobOptions
            {
                AdapterPath = parse.GetValue(adapter)!,
                OutPath = parse.GetValue(output)!,
                ModelPath = parse.GetValue(model),
                DType = parse.GetValue(dtype)!,
                Overwrite = parse.GetValue(overwrite),
                Ollama = parse.GetValue(ollama),
            }, sink);
            parse.InvocationConfiguration.Output.WriteLine($"exported {w.Modules.Count} modules to {Path.GetFullPath(parse.GetValue(output)!)}");
        }));
        return command;
    }
}
