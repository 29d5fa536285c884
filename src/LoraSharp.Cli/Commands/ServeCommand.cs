// `lorasharp serve`: the web UI (training with a live loss chart, generation side by side, adapter tools). Parsing
// and presentation only: the server is LoraSharp.Web's WebServer. Binds 127.0.0.1 unless --listen is given; a
// non-loopback bind always requires an access token, generated and printed when --token is not given.
using System.CommandLine;
using LoraSharp.Web;

namespace LoraSharp.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string>("--models") { Description = "Folder of base models: Hugging Face folders and .gguf files (default: models).", DefaultValueFactory = _ => "models" };
        var datasets = new Option<string>("--datasets") { Description = "Folder of datasets (.json, .jsonl, .txt); uploads go here (default: datasets).", DefaultValueFactory = _ => "datasets" };
        var adapters = new Option<string>("--adapters") { Description = "Folder training writes adapters to (default: loras, as train's --output).", DefaultValueFactory = _ => "loras" };
        var port = new Option<int>("--port") { Description = "TCP port (default 7860; 0 picks a free one).", DefaultValueFactory = _ => 7860 };
        var listen = new Option<string?>("--listen")
        {
            Description = "Serve other machines: bind every interface (0.0.0.0), or the IP address given. Requires the access token.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var token = new Option<string?>("--token") { Description = "Access token (default: none on loopback; generated and printed with --listen)." };
        var maxUpload = new Option<int>("--max-upload-mb") { Description = "Largest dataset upload in MiB (default 256).", DefaultValueFactory = _ => 256 };
        var command = new Command("serve", "Start the web UI: training tab with a live loss chart, generate tab (base vs adapter), adapters tab.")
        {
            models, datasets, adapters, port, listen, token, maxUpload,
        };
        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(maxUpload) < 1) throw new Core.UserErrorException($"--max-upload-mb must be at least 1 (is {parse.GetValue(maxUpload)}).");
            var options = new WebServerOptions
            {
                ModelsFolder = parse.GetValue(models)!, DatasetsFolder = parse.GetValue(datasets)!, AdaptersFolder = parse.GetValue(adapters)!,
                Port = parse.GetValue(port), Listen = parse.GetResult(listen) != null ? parse.GetValue(listen) ?? "0.0.0.0" : null,
                Token = parse.GetValue(token), MaxUploadBytes = (long)parse.GetValue(maxUpload) << 20,
            };
            return Serve(options, output, cancel).GetAwaiter().GetResult();
        })));
        return command;
    }

    // Runs until Ctrl+C or SIGTERM (the host's console lifetime turns both into Stopping), then disposes the server,
    // which interrupts a running training and waits for its checkpoint.
    private static async Task<int> Serve(WebServerOptions options, TextWriter output, CancellationToken cancel)
    {
        await using var server = await WebServer.StartAsync(options, cancel);
        output.WriteLine($"LoraSharp web UI: {server.BrowserUrl}");
        if (!server.IsLoopback)
            output.WriteLine($"  listening on {options.Listen}:{server.Url.Port}; from another machine use this machine's address with the same ?token=.");
        output.WriteLine($"  models: {Path.GetFullPath(options.ModelsFolder)}  datasets: {Path.GetFullPath(options.DatasetsFolder)}  adapters: {Path.GetFullPath(options.AdaptersFolder)}");
        output.WriteLine("  Ctrl+C stops the server (a running training saves a checkpoint first).");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel, server.Stopping);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token);
        }
        catch (OperationCanceledException)
        {
            output.WriteLine("stopping...");
        }
        return 0;
    }
}
