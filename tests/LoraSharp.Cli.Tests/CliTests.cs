namespace LoraSharp.Cli.Tests;

public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Help_ListsWorkingVerbs()
    {
        var (code, output, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("system", output);
    }

    [Fact]
    public void Version_PrintsSemver()
    {
        var (code, output, _) = Run("--version");
        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+", output.Trim());
    }

    [Fact]
    public void EveryVerb_HasHelp()
    {
        foreach (var verb in CliApp.Build().Subcommands)
        {
            var (code, output, _) = Run(verb.Name, "--help");
            Assert.Equal(0, code);
            Assert.Contains(verb.Description!, output);
        }
    }

    [Fact]
    public void UnknownVerb_FailsWithMessage()
    {
        var (code, _, err) = Run("no-such-verb");
        Assert.NotEqual(0, code);
        Assert.Contains("no-such-verb", err);
    }

    [Fact]
    public void System_PrintsSimdAndThreads()
    {
        var (code, output, _) = Run("system");
        Assert.Equal(0, code);
        Assert.Contains("simd hardware", output);
        Assert.Contains("threads", output);
    }

    [Fact]
    public void PlainProgress_PrintsFinalLine()
    {
        var o = new StringWriter();
        var sink = new Console.ConsoleProgress.PlainSink("train", o);
        sink.SetTotal(10);
        sink.Report(1, "loss 2.0");
        sink.Report(10, "loss 1.0");
        Assert.Contains("train 10/10 (100%) loss 1.0", o.ToString());
    }
}

public class TrainCommandTests
{
    [Fact]
    public void BadRankPattern_FailsBeforeAnyWork_NamingTheOption()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(["train", "-m", "/nonexistent-model", "--dataset", "/nonexistent.json", "--rank-pattern", "q_proj:2"], o, e);
        Assert.Equal(1, code);
        Assert.Contains("--rank-pattern", e.ToString());
    }

    [Fact]
    public void MissingModel_FailsWithClearMessage()
    {
        var e = new StringWriter();
        int code = CliApp.Run(["train", "-m", "/nonexistent-model", "--dataset", "/nonexistent.json"], new StringWriter(), e);
        Assert.Equal(1, code);
        Assert.Contains("/nonexistent-model", e.ToString());
    }
}
