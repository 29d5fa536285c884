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
        ("attention", "Only the attention section of `bench kernels`: tiled forward/backward per shape (also soft-capped, gemma2), packed vs padded.", o => { AttentionBench.Run(o); return 0; }),
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
        string keys = string.Join(", ", TrainBench.Shapes.Select(x => x.Key));
        var shape = new Option<string[]>("--shape") { Description = $"Shapes to run: {keys} (a: stories15M-like, b: SmolLM2-135M-like, 7b: a 4-bit QLoRA step).", DefaultValueFactory = _ => ["a", "b"], AllowMultipleArgumentsPerToken = true };
        var model = new Option<string?>("--model") { Description = "Time a real model (Hugging Face folder or GGUF file) as `train` loads it, with random token ids, instead of the named shapes." };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence with --model.", DefaultValueFactory = _ => 1024 };
        var batch = new Option<int>("--batch") { Description = "Sequences per micro-batch with --model (shape b's is 4).", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Timed steps (median reported).", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 2 };
        var noPeer = new Option<bool>("--no-peer") { Description = "Skip the PyTorch peer." };
        var checkpointing = new Option<bool>("--checkpointing") { Description = "Internal (train-child): activation checkpointing on.", Hidden = true };
        var targets = new Option<string[]>("--target-modules") { Description = "LoRA target modules (PEFT names, as `train --target-modules`): all-linear (every projection of the model's family; phi3's are qkv_proj o_proj gate_up_proj down_proj) or a list.", DefaultValueFactory = _ => ["all-linear"], AllowMultipleArgumentsPerToken = true };
        var baseDType = new Option<string>("--base-dtype") { Description = "Base weights f32, bf16, q8_0, q4_0, nf4 or nf4-dq (and auto or stored with --model); default: the shape's (f32; q4_0 for 7b; auto for --model).", Hidden = child };
        var command = child
            ? new Command("train-child", "Internal: one shape measured in this process, printed as JSON.") { Hidden = true }
            : new Command("train", "Tokens/s, GFLOP/s, peak RSS and the memory estimate of a LoRA training step at named shapes or a real model, with the PyTorch peer run on the same dims in the same benchmark.");
        foreach (var o in new Option[] { shape, model, seq, batch, steps, warmup, noPeer, checkpointing, baseDType, targets }) command.Options.Add(o);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var output = parse.InvocationConfiguration.Output;
            string? path = parse.GetValue(model);
            if (parse.GetValue(batch) < 1 || parse.GetValue(seq) < 2) throw new Core.UserErrorException("--batch must be at least 1 and --seq at least 2.");
            var chosen = path != null ? [TrainBench.ForModel(path, parse.GetValue(seq)) with { Batch = parse.GetValue(batch) }] : parse.GetValue(shape)!.Select(TrainBench.ShapeOf).ToList();
            if (parse.GetValue(baseDType) is { } dtype) chosen = [.. chosen.Select(x => x with { BaseDType = dtype })];
            if (parse.GetValue(targets) is { Length: > 0 } modules) chosen = [.. chosen.Select(x => x with { TargetModules = modules })];
            foreach (var x in chosen) x.CheckTargets();
            if (child)
            {
                var s = chosen[0];
                var result = TrainBench.MeasureHere(s, parse.GetValue(steps), parse.GetValue(warmup), parse.GetValue(checkpointing), s.BaseDType);
                output.WriteLine(System.Text.Json.JsonSerializer.Serialize(result, TrainBench.ResultJson));
                return 0;
            }
            return TrainBench.Run(output, chosen, parse.GetValue(steps), parse.GetValue(warmup), SelfCommand(), parse.GetValue(noPeer) ? null : TrainBench.FindPeerScript());
        }));
        return command;
    }

    // How a benchmark starts this program again for its child processes.
    private static string[] SelfCommand() => Environment.ProcessPath is { } exe && !exe.EndsWith("dotnet", StringComparison.Ordinal)
        ? [exe] : ["dotnet", typeof(BenchCommand).Assembly.Location];

    // `bench scale` (and its hidden child, run once directly and once under mpirun): data-parallel tokens/s on this machine.
    private static Command ScaleCommand(bool child)
    {
        var shape = new Option<string>("--shape") { Description = "Shape: " + string.Join(", ", TrainBench.Shapes.Select(x => x.Key)) + " (default b, the issue's target).", DefaultValueFactory = _ => "b" };
        var steps = new Option<int>("--steps") { Description = "Timed steps (median reported).", DefaultValueFactory = _ => 3 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 1 };
        var batch = new Option<int?>("--batch") { Description = "Sequences per micro-batch (default: the shape's)." };
        var seq = new Option<int?>("--seq") { Description = "Tokens per sequence (default: the shape's); small values check the benchmark runs." };
        var command = child
            ? new Command("scale-child", "Internal: one configuration of `bench scale` in this process (or this rank), printed as JSON by rank 0.") { Hidden = true }
            : new Command("scale", "Data-parallel training on MPI: tokens/s of 1 rank x 2 threads vs 2 ranks x 1 thread (mpirun), bytes and time all-reduced per step, and the scaling model for N machines.");
        foreach (var o in new Option[] { shape, steps, warmup, batch, seq }) command.Options.Add(o);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var s = TrainBench.ShapeOf(parse.GetValue(shape)!);
            s = s with { Batch = parse.GetValue(batch) ?? s.Batch, Seq = parse.GetValue(seq) ?? s.Seq };
            if (s.Batch < 1 || s.Seq < 2) throw new Core.UserErrorException("--batch must be at least 1 and --seq at least 2.");
            if (!child) return ScaleBench.Run(parse.InvocationConfiguration.Output, SelfCommand(), s, parse.GetValue(steps), parse.GetValue(warmup));
            if (ScaleBench.MeasureHere(s, parse.GetValue(steps), parse.GetValue(warmup)) is { } result)
                parse.InvocationConfiguration.Output.WriteLine(System.Text.Json.JsonSerializer.Serialize(result));
            return 0;
        }));
        return command;
    }

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

    private static Command MethodsCommand()
    {
        var shape = new Option<string[]>("--shape") { Description = "Shapes: a, b (as `bench train`), or tiny (only to check the benchmark runs).", DefaultValueFactory = _ => ["a", "b"], AllowMultipleArgumentsPerToken = true };
        var methods = new Option<string[]>("--methods") { Description = $"Methods beside lora: {string.Join(", ", MethodsBench.Methods)}.", DefaultValueFactory = _ => [.. MethodsBench.Methods], AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int>("--steps") { Description = "Timed steps per method (median reported).", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up steps.", DefaultValueFactory = _ => 1 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds over the methods; each keeps its fastest median.", DefaultValueFactory = _ => 2 };
        var dropout = new Option<double>("--lora-dropout") { Description = "lora_dropout of every method (0 is PEFT's default and DoRA's fast path; train's default is 0.05).", DefaultValueFactory = _ => 0.0 };
        var command = new Command("methods", "Step time of DoRA, DPO (with its reference pass) and Sophia against a LoRA step on the same tokens, at shapes a and b, in one run; prints the ratios and the issue's targets.");
        foreach (var o in new Option[] { shape, methods, steps, warmup, rounds, dropout }) command.Options.Add(o);
        command.SetAction(parse => MethodsBench.Run(parse.InvocationConfiguration.Output, [.. parse.GetValue(shape)!.Select(MethodsBench.ShapeOf)],
            parse.GetValue(methods)!, Math.Max(1, parse.GetValue(steps)), Math.Max(0, parse.GetValue(warmup)), Math.Max(1, parse.GetValue(rounds)), parse.GetValue(dropout)));
        return command;
    }

    private static Command RandomModelCommand()
    {
        var shape = new Option<string>("--shape") { Description = "Shape: " + string.Join(", ", TrainBench.Shapes.Select(x => x.Key)) + ", or tiny (only to check the folder loads).", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Weights: f32, bf16 or f16.", DefaultValueFactory = _ => "bf16" };
        var output = new Option<string>("--output", "-o") { Description = "Folder to write.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer-from") { Description = "Folder whose tokenizer.json is copied (default ../shared/models/stories260K-hf)." };
        var family = new Option<string>("--family") { Description = "Model family (config.json model_type, its fields and tensor names): " + string.Join(", ", RandomModelFolder.Families) + ".", DefaultValueFactory = _ => "llama" };
        var command = new Command("random-model", "Write a Hugging Face folder with random weights at a benchmark shape (any supported model family), to time `train` end to end.");
        foreach (var o in new Option[] { shape, dtype, output, tokenizer, family }) command.Options.Add(o);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            string? from = parse.GetValue(tokenizer) ?? (TrainBench.FindPeerScript() is { } peer
                ? Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(peer))!, "models", "stories260K-hf") : null);
            if (from == null) throw new Core.UserErrorException("No tokenizer folder: pass --tokenizer-from (../shared was not found).");
            RandomModelFolder.Write(MethodsBench.ShapeOf(parse.GetValue(shape)!), TrainBench.BaseDType(parse.GetValue(dtype)!), parse.GetValue(output)!, from, parse.GetValue(family)!);
            parse.InvocationConfiguration.Output.WriteLine($"wrote {parse.GetValue(output)} ({parse.GetValue(family)})");
            return 0;
        }));
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
                _ => throw new Core.UserErrorException($"--gguf-types: '{t}' is not f32, q8_0 or q4_0."),
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
        command.Subcommands.Add(ScaleCommand(child: false));
        command.Subcommands.Add(ScaleCommand(child: true));
        command.Subcommands.Add(MethodsCommand());
        command.Subcommands.Add(RandomModelCommand());
        command.Subcommands.Add(GenerateCommand());
        return command;
    }
}
