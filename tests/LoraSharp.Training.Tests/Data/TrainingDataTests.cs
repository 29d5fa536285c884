// TrainingData.Prepare: kind detection, format lookup by name, eval file versus split, packing, and the errors
// for a missing or misplaced format.
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class TrainingDataTests
{
    private static string Formats => Path.Combine(DataTestKit.RepoRoot(), "formats");

    private static string Alpaca(TempDir d, string name, int n) => d.File(name, string.Join('\n', Enumerable.Range(0, n).Select(i =>
        $$"""{"instruction": "Add {{i}} and {{i + 1}}.", "output": "{{2 * i + 1}}"}""")));

    [Fact]
    public void Formatted_ByName_WithSplit_IsSeeded()
    {
        using var d = new TempDir();
        var spec = new DataSpec { DatasetPath = Alpaca(d, "a.jsonl", 20), Format = "alpaca", TrainOnlyAfter = "### Response:", EvalFraction = 0.25, Seed = 9, CutoffLength = 128 };
        var p = TrainingData.Prepare(spec, DataTestKit.Tok, Formats);
        Assert.Equal(DatasetKind.Formatted, p.Kind);
        Assert.Equal(15, p.Train.Count);
        Assert.Equal(5, p.Eval.Count);
        Assert.Equal(20, p.Stats.Samples);
        Assert.Equal(p.Eval.Select(s => s.InputIds), TrainingData.Prepare(spec, DataTestKit.Tok, Formats).Eval.Select(s => s.InputIds));
        Assert.Contains("### Response:", p.Template["template_1"]);
    }

    [Fact]
    public void EvalFile_AndPacking()
    {
        using var d = new TempDir();
        var spec = new DataSpec { DatasetPath = Alpaca(d, "a.jsonl", 12), EvalDatasetPath = Alpaca(d, "b.jsonl", 3), Format = Path.Combine(Formats, "alpaca-chatbot-format.json"), Pack = true, CutoffLength = 128 };
        var p = TrainingData.Prepare(spec, DataTestKit.Tok);
        Assert.True(p.Train.Count < 12);
        Assert.Single(p.Eval);
        Assert.All(p.Train, s => Assert.True(s.Length <= 128));
    }

    [Fact]
    public void Chat_And_RawText_AreDetected()
    {
        using var d = new TempDir();
        string chat = d.File("c.jsonl", """{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}""");
        var p = TrainingData.Prepare(new DataSpec { DatasetPath = chat, ChatTemplate = "llama2", CutoffLength = 64 }, DataTestKit.Tok);
        Assert.Equal(DatasetKind.Chat, p.Kind);
        Assert.Equal("llama2", p.Template["chat_template"]);
        string txt = d.File("t.txt", "Once upon a time there was a cat.");
        Assert.Equal(DatasetKind.RawText, TrainingData.Prepare(new DataSpec { DatasetPath = txt, CutoffLength = 64, OverlapLength = 8 }, DataTestKit.Tok).Kind);
    }

    [Fact]
    public void FormatMissingUnknownOrMisplaced_IsRefused()
    {
        using var d = new TempDir();
        string a = Alpaca(d, "a.jsonl", 3);
        Assert.Contains("needs a format file", Assert.Throws<DatasetException>(() => TrainingData.Prepare(new DataSpec { DatasetPath = a }, DataTestKit.Tok, Formats)).Message);
        var e = Assert.Throws<DatasetException>(() => TrainingData.Prepare(new DataSpec { DatasetPath = a, Format = "nope" }, DataTestKit.Tok, Formats));
        Assert.Contains("available: alpaca, alpaca-chatbot, ChatML, llama2-chat, vicuna", e.Message);
        string txt = d.File("t.txt", "text");
        Assert.Throws<DatasetException>(() => TrainingData.Prepare(new DataSpec { DatasetPath = txt, Format = "alpaca" }, DataTestKit.Tok, Formats));
        Assert.Throws<DatasetException>(() => TrainingData.Prepare(new DataSpec { DatasetPath = a, Format = "alpaca", EvalDatasetPath = a, EvalFraction = 0.1 }, DataTestKit.Tok, Formats));
    }
}
