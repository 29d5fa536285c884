// The error contract of docs/reliability.md ("Errors"): a problem the user can fix (a bad file, row, option or
// setting) is a UserErrorException (or IOException, ...), which the CLI prints as one "error: ..." line with exit
// code 1; every other exception is a bug: exit code 70, one "internal error" line and a log file with the trace.
// The table walks representative user errors through each layer by running real commands on the stories260K
// fixtures with one thing broken.
using LoraSharp.App;
using LoraSharp.Cli.Commands;
using LoraSharp.Core;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

[CollectionDefinition(nameof(ErrorClassificationTests), DisableParallelization = true)]
public sealed class ErrorClassificationCollection;

[Collection(nameof(ErrorClassificationTests))]   // sets LORASHARP_LOG_DIR, a process-wide variable
public sealed class ErrorClassificationTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-cli-errors-" + Guid.NewGuid().ToString("N"));

    public ErrorClassificationTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Hf => SharedFixtures.Stories260KHf;

    private static string Lora => SharedFixtures.Path("golden", "stories260K", "lora");

    // Each case: a name, a setup that breaks one thing in the temp folder and returns the command line, and a
    // fragment the one error line must hold (the file, option or setting at fault).
    public static TheoryData<string> Cases => new(s_cases.Keys);

    private static readonly Dictionary<string, (Func<string, string[]> Args, string Fragment)> s_cases = new()
    {
        ["gguf file with a lying header"] = (dir =>
        {
            string f = Path.Combine(dir, "bad.gguf");
            File.WriteAllBytes(f, [.. "GGUF"u8, 3, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0]);
            return ["generate", "--model", f, "--prompt", "Once", "-n", "2"];
        }, "bad.gguf"),
        ["safetensors file that is truncated"] = (dir =>
        {
            string m = CopyModel(dir);
            File.WriteAllBytes(Path.Combine(m, "model.safetensors"), [0x40, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
            return ["generate", "--model", m, "--prompt", "Once", "-n", "2"];
        }, "model.safetensors"),
        ["adapter_config.json with a wrong type"] = (dir =>
        {
            string a = CopyAdapter(dir);
            File.WriteAllText(Path.Combine(a, "adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": \"eight\", \"lora_alpha\": 16}");
            return ["generate", "--model", Hf, "--adapter", a, "--prompt", "Once", "-n", "2"];
        }, "adapter_config.json"),
        ["dataset with a row that is not JSON"] = (dir =>
        {
            string d = Path.Combine(dir, "data.jsonl");
            File.WriteAllText(d, "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n{\"instruction\": \"broken\n");
            return ["train", "--model", Hf, "--dataset", d, "--format", "alpaca", "--output", Path.Combine(dir, "loras"), "--max-steps", "1"];
        }, "data.jsonl"),
        ["LoRA target that is not a module"] = (dir =>
        {
            string d = Path.Combine(dir, "data.jsonl");
            File.WriteAllText(d, "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n");
            return ["train", "--model", Hf, "--dataset", d, "--format", "alpaca", "--output", Path.Combine(dir, "loras"), "--max-steps", "1",
                "--target-modules", "qq_proj"];
        }, "qq_proj"),
        ["generate: negative temperature"] = (_ => ["generate", "--model", Hf, "--prompt", "Once", "-n", "2", "--temperature", "-1"], "temperature"),
        ["generate: unknown chat template"] = (_ => ["generate", "--model", Hf, "--prompt", "Once", "-n", "2", "--chat", "--chat-template", "nope"], "nope"),
        ["generate: unknown base dtype"] = (_ => ["generate", "--model", Hf, "--prompt", "Once", "-n", "2", "--base-dtype", "int3"], "int3"),
        ["merge: dtype the format cannot hold"] = (dir => ["merge", "--model", Hf, "--adapter", Lora, "--out", Path.Combine(dir, "m.gguf"), "--dtype", "bf16"], "bf16"),
        ["export: dtype that is not f32 or f16"] = (dir => ["export", "--adapter", Lora, "--model", Hf, "--out", Path.Combine(dir, "a.gguf"), "--dtype", "q4_0"], "q4_0"),
        ["combine: unknown method"] = (dir => ["combine", "--adapter", Lora, "--adapter", Lora, "--method", "average", "--out", Path.Combine(dir, "c")], "average"),
        ["extract: rank and energy together"] = (dir => ["extract", "--base", Hf, "--tuned", Hf, "--rank", "2", "--energy", "0.5", "--out", Path.Combine(dir, "x")], "--energy"),
        ["perplexity: window of one token"] = (dir =>
        {
            string t = Path.Combine(dir, "t.txt");
            File.WriteAllText(t, "Once upon a time there was a little cat.");
            return ["perplexity", "--model", Hf, "--file", t, "--max-length", "1"];
        }, "max length"),
        ["perplexity: missing text file"] = (dir => ["perplexity", "--model", Hf, "--file", Path.Combine(dir, "none.txt")], "none.txt"),
        ["serve: port out of range"] = (dir => ["serve", "--models", dir, "--port", "70000"], "--port"),
    };

    private static string CopyModel(string dir)
    {
        string m = Path.Combine(dir, "model");
        Directory.CreateDirectory(m);
        foreach (var f in new[] { "config.json", "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(Hf, f), Path.Combine(m, f));
        return m;
    }

    private static string CopyAdapter(string dir)
    {
        string a = Path.Combine(dir, "adapter");
        Directory.CreateDirectory(a);
        File.Copy(Path.Combine(Lora, "adapter_model.safetensors"), Path.Combine(a, "adapter_model.safetensors"));
        return a;
    }

    private static (int Code, string Out, string[] ErrLines) Run(string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void UserError_ExitsWithOneAndOneErrorLine(string name)
    {
        var (args, fragment) = s_cases[name];
        string logs = Path.Combine(_dir, "logs");
        var (code, _, err) = WithLogDir(logs, () => Run(args(_dir)));
        string all = string.Join(" | ", err);
        Assert.True(code == CommandRunner.UserError, $"{name}: exit code {code}, expected {CommandRunner.UserError}; stderr: {all}");
        Assert.True(err.Length == 1, $"{name}: expected one line on stderr, got {err.Length}: {all}");
        Assert.StartsWith("error: ", err[0]);
        Assert.Contains(fragment, err[0]);
        Assert.False(Directory.Exists(logs) && Directory.EnumerateFiles(logs).Any(), $"{name}: a user error wrote a crash log");
    }

    public static TheoryData<string, Exception, bool> Classified => new()
    {
        { "user error", new UserErrorException("bad"), true },
        { "model file", new Formats.ModelFormatException("m.gguf", "general.architecture", "is missing."), true },
        { "dataset", new Training.Data.DatasetException("bad row", "d.jsonl", 2, 2), true },
        { "tokenizer file", new Tokenizers.TokenizerFormatException("tokenizer.json: field 'model' is missing"), true },
        { "missing file", new FileNotFoundException("no such file", "x"), true },
        { "no permission", new UnauthorizedAccessException("denied"), true },
        { "bad environment variable read in a static initializer", new TypeInitializationException("LoraSharp.Core.Simd", new UserErrorException("LORASHARP_SIMD='9' ...")), true },
        { "one failed parallel part", new AggregateException(new UserErrorException("bad")), true },
        { "argument contract", new ArgumentException("x has 3 elements but its shape needs 4"), false },
        { "argument range contract", new ArgumentOutOfRangeException("i"), false },
        { "state contract", new InvalidOperationException("not started"), false },
        { "format of our own data", new FormatException("bad"), false },
        { "invalid data", new InvalidDataException("bad"), false },
        { "not supported", new NotSupportedException("no"), false },
        { "null dereference", new NullReferenceException(), false },
        { "bug in a static initializer", new TypeInitializationException("T", new InvalidOperationException("bug")), false },
    };

    [Theory]
    [MemberData(nameof(Classified))]
    public void IsExpected_SeparatesUserErrorsFromBugs(string name, Exception e, bool expected) =>
        Assert.True(UserErrors.IsExpected(e) == expected, $"{name}: {e.GetType().Name} should be {(expected ? "a user error" : "a bug")}");

    [Fact]
    public void UnexpectedException_ExitsWith70_OneInternalErrorLine_AndALogWithTheTrace()
    {
        string logs = Path.Combine(_dir, "logs");
        var err = new StringWriter();
        int code = WithLogDir(logs, () => CommandRunner.Run(err, ThrowBug));
        Assert.Equal(CommandRunner.InternalError, code);
        Assert.Equal(70, code);
        var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines, l => l.StartsWith("internal error", StringComparison.Ordinal));
        Assert.Equal("internal error (InvalidOperationException): the pool lost a worker", lines[0]);
        var files = Directory.GetFiles(logs);
        var log = Assert.Single(files);
        Assert.Contains(log, err.ToString());
        string text = File.ReadAllText(log);
        Assert.Contains("System.InvalidOperationException: the pool lost a worker", text);
        Assert.Contains(nameof(ThrowBug), text);   // the stack trace, not only the message
    }

    [Fact]
    public void UserError_InsideTheRunner_ExitsWith1_WithoutALog()
    {
        string logs = Path.Combine(_dir, "logs");
        var err = new StringWriter();
        int code = WithLogDir(logs, () => CommandRunner.Run(err, () => throw new TypeInitializationException("LoraSharp.Core.Simd",
            new UserErrorException("LORASHARP_SIMD='9' is not one of scalar, 128, 256, 512."))));
        Assert.Equal(1, code);
        Assert.Equal("error: LORASHARP_SIMD='9' is not one of scalar, 128, 256, 512.", err.ToString().Trim());
        Assert.False(Directory.Exists(logs));
    }

    [Fact]
    public void Cancellation_ExitsWith130()
    {
        var err = new StringWriter();
        Assert.Equal(130, CommandRunner.Run(err, () => throw new OperationCanceledException()));
        Assert.Equal("stopped.", err.ToString().Trim());
    }

    private static int ThrowBug() => throw new InvalidOperationException("the pool lost a worker");

    private static T WithLogDir<T>(string dir, Func<T> body)
    {
        string? previous = Environment.GetEnvironmentVariable("LORASHARP_LOG_DIR");
        Environment.SetEnvironmentVariable("LORASHARP_LOG_DIR", dir);
        try { return body(); }
        finally { Environment.SetEnvironmentVariable("LORASHARP_LOG_DIR", previous); }
    }
}
