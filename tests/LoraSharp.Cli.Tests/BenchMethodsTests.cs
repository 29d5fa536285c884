// `lorasharp bench methods` runs at the tiny check shape and prints a row per method with its ratio to LoRA and the
// issue's targets (timings at this shape mean nothing; the real measurement is shapes a and b on a quiet machine).
namespace LoraSharp.Cli.Tests;

public class BenchMethodsTests
{
    [Fact]
    public void BenchMethods_TinyShape_PrintsEveryMethodWithItsRatio()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(["bench", "methods", "--shape", "tiny", "--steps", "1", "--warmup", "0", "--rounds", "1"], o, e);
        Assert.True(code == 0, e.ToString() + o);
        string text = o.ToString();
        foreach (var method in new[] { "lora", "dora", "dpo", "sophia" })
            Assert.Matches($@"\n  {method} +[0-9.]+ +[0-9.]+ +[0-9.]+x", text);
        Assert.Contains("1.00x", text);
        Assert.Contains("<= 1.3x", text);
        Assert.Contains("<= 2.1x", text);
    }

    [Fact]
    public void BenchMethods_UnknownMethod_IsAClearError()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(["bench", "methods", "--shape", "tiny", "--methods", "qlora"], o, e);
        Assert.NotEqual(0, code);
        Assert.Contains("unknown method 'qlora'", e.ToString() + o);
    }
}
