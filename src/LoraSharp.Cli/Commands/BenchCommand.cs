// `lorasharp bench <what>`: runs a benchmark from LoraSharp.Bench on this machine and prints its ratios.
// Each subcommand is one row of Benchmarks; adding a benchmark is a one-line change. Not here: the measuring.
using System.CommandLine;
using LoraSharp.Bench;

namespace LoraSharp.Cli.Commands;

internal static class BenchCommand
{
    /// <summary>(subcommand, description, run): run gets the output writer and returns the exit code.</summary>
    private static readonly (string Name, string Description, Func<TextWriter, int> Run)[] Benchmarks =
    [
        ("kernels", "Measure the fp32 FMA peak, memory bandwidth and each kernel's throughput as a fraction of them.", KernelsBench.Run),
        ("matmul", "Only the matmul section of `bench kernels`: each layout at the issue's shapes against the FMA peak.", o => KernelsBench.Run(o, "matmul")),
        ("elementwise", "Only the elementwise section of `bench kernels`: RMSNorm, RoPE, SwiGLU, softmax, SiLU, dropout against memory bandwidth.", o => { ElementwiseBench.Run(o); return 0; }),
        ("stored-matmul", "Matmul throughput over compressed frozen weights (bf16, Q8_0, NF4, Q4_0) as a fraction of f32 panels.", o => { StoredMatMulBench.Run(o); return 0; }),
        ("tokenize", "Encode throughput (MB/s) of the stories260K, Llama-2 and Llama-3 tokenizers on War and Peace (needs ../shared).", RunTokenizer),
    ];

    private static int RunTokenizer(TextWriter output)
    {
        string? shared = TrainBench.FindPeerScript() is { } peer ? Path.GetDirectoryName(Path.GetDirectoryName(peer)) : null;
        if (shared == null) { output.WriteLine("error: ../shared (fixtures) not found; run from the repository."); return 1; }
        TokenizerBench.Run(output, shared);
        return 0;
    }

    private static Command TrainCommand(bool child)
    {
        var shape = new Option<string[]>("--shape") { Description = "Shapes to run: a (stories15M-like) and/or b (SmolLM2-135M-like).", DefaultValueFactory = _ => ["a", "b"], AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int>("--steps") { Description = "Timed steps (median reported).", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 2 };
        var noPeer = new Option<bool>("--no-peer") { Description = "Skip the PyTorch peer." };
        var checkpointing = new Option<bool>("--checkpointing") { Description = "Internal (train-child): activation checkpointing on.", Hidden = true };
        var baseDType = new Option<string>("--base-dtype") { Description = "Internal (train-child): base weights f32, bf16, q8_0, q4_0, nf4 or nf4-dq.", Hidden = true, DefaultValueFactory = _ => "f32" };
        var command = child
            ? new Command("train-child", "Internal: one shape measured in this process, printed as JSON.") { Hidden = true }
            : new Command("train", "Tokens/s, GFLOP/s and peak RSS of a LoRA training step at the PyTorch peer's shapes, with the peer run in the same benchmark.");
        foreach (var o in new Option[] { shape, steps, warmup, noPeer, checkpointing, baseDType }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var shapes = parse.GetValue(shape)!;
            if (child)
            {
                var s = TrainBench.ShapeOf(shapes[0]);
                var result = TrainBench.MeasureHere(s, parse.GetValue(steps), parse.GetValue(warmup), parse.GetValue(checkpointing), parse.GetValue(baseDType)!);
                output.WriteLine(System.Text.Json.JsonSerializer.Serialize(result));
                return 0;
            }
            return TrainBench.Run(output, shapes, parse.GetValue(steps), parse.GetValue(warmup), SelfCommand(), parse.GetValue(noPeer) ? null : TrainBench.FindPeerScript());
        });
        return command;
    }

    // How a benchmark starts this program again for its child processes.
    private static string[] SelfCommand() => Environment.ProcessPath is { } exe && !exe.EndsWith("dotnet", StringComparison.Ordinal)
        ? [exe] : ["dotnet", typeof(BenchCommand).Assembly.Location];

    private static Command QloraCommand()
    {
        var dtypes = new Option<string[]>("--base-dtype") { Description = "Base dtypes to compare at shape (b).", DefaultValueFactory = _ => [.. QloraBench.DefaultDTypes], AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int>("--steps") { Description = "Timed steps per dtype (median reported).", DefaultValueFactory = _ => 3 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 1 };
        var no7b = new Option<bool>("--no-7b") { Description = "Skip the 7B-class step (about 2-3 minutes, ~5 GiB)." };
        var rounds = new Option<int>("--rounds") { Description = "Rounds over the dtypes; each keeps its fastest (a shared machine has slow spells).", DefaultValueFactory = _ => 2 };
        var command = new Command("qlora", "Tokens/s, base-weight bytes and peak RSS of a LoRA step on f32, bf16, q8_0, nf4 and q4_0 bases (shape b), and one 4-bit step at a 7B-class shape.");
        foreach (var o in new Option[] { dtypes, steps, warmup, no7b, rounds }) command.Options.Add(o);
        command.SetAction(parse => QloraBench.Run(parse.InvocationConfiguration.Output, SelfCommand(), parse.GetValue(dtypes)!, parse.GetValue(steps),
            parse.GetValue(warmup), !parse.GetValue(no7b), Math.Max(1, parse.GetValue(rounds))));
        return command;
    }

    private static Command GenerateCommand()
    {
        var noLlamaCpp = new Option<bool>("--no-llama-cpp") { Description = "Skip llama.cpp (LoraSharp still runs the same GGUF files)." };
        var llamaCppOnly = new Option<bool>("--llama-cpp-only") { Description = "Only the same-file comparison with llama.cpp, not the five base types." };
        var command = new Command("generate", "Decode tokens/s at the SmolLM2-135M-like shape with f32, bf16, q8_0, nf4 and q4_0 weights and the implied memory bandwidth; " +
                                              "then decode and 512-token prefill tokens/s of LoraSharp and llama.cpp (in-process, LLamaSharp) on the same F32/Q8_0/Q4_0 GGUF files, with ratios.");
        var ggufTypes = new Option<string[]>("--gguf-types") { Description = "GGUF types of the llama.cpp comparison: f32, q8_0, q4_0.", DefaultValueFactory = _ => ["f32", "q8_0", "q4_0"], AllowMultipleArgumentsPerToken = true };
        command.Options.Add(noLlamaCpp);
        command.Options.Add(llamaCppOnly);
        command.Options.Add(ggufTypes);
        command.SetAction(parse =>
        {
            var types = parse.GetValue(ggufTypes)!.Select(t => t.ToLowerInvariant() switch
            {
                "f32" => LoraSharp.Core.Tensors.DType.F32,
                "q8_0" => LoraSharp.Core.Tensors.DType.Q8_0,
                "q4_0" => LoraSharp.Core.Tensors.DType.Q4_0,
                _ => throw new ArgumentException($"--gguf-types: '{t}' is not f32, q8_0 or q4_0."),
            }).Distinct().ToArray();
            return GenerateBench.Run(parse.InvocationConfiguration.Output, types: !parse.GetValue(llamaCppOnly), llamaCpp: true,
                withLlamaCpp: !parse.GetValue(noLlamaCpp), ggufTypes: types);
        });
        return command;
    }

    public static Command Create()
    {
        var command = new Command("bench", "Run a benchmark on this machine and print its speed relative to the machine's peaks.");
        foreach (var (name, description, run) in Benchmarks)
        {
            var sub = new Command(name, description);
            sub.SetAction(parse => run(parse.InvocationConfiguration.Output));
            command.Subcommands.Add(sub);
        }
        command.Subcommands.Add(TrainCommand(child: false));
        command.Subcommands.Add(TrainCommand(child: true));
        command.Subcommands.Add(QloraCommand());
        command.Subcommands.Add(GenerateCommand());
        return command;
    }
}
