// Formatted datasets with stories260K's tokenizer: train_only_after masks exactly the tokens before the marker's end,
// EOS is appended once, excess length drops or truncates, and bad input (missing fields, an empty result, a cutoff
// longer than the context) gives clear errors.
using LoraSharp.Models.Llama;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class FormattedDatasetTests
{
    private static readonly FormatFile Alpacaish = FormatFile.Parse(
        """{"instruction,output": "### Instruction:\n%instruction%\n\n### Response:\n%output%", "instruction,input,output": "### Instruction:\n%instruction%\n%input%\n\n### Response:\n%output%"}""",
        "fmt.json");

    private const string Rows = """
        {"instruction": "Tell a story about a cat.", "output": "Once upon a time there was a cat."}
        {"instruction": "Say hi.", "input": "to Tom", "output": "Hi Tom!"}
        """;

    [Fact]
    public void TrainOnlyAfter_MasksEverythingBeforeTheMarker()
    {
        using var d = new TempDir();
        var ds = FormattedDataset.Build(d.File("d.jsonl", Rows), Alpacaish, DataTestKit.Tok,
            new FormattedOptions { CutoffLength = 256, TrainOnlyAfter = "### Response:" });
        Assert.Equal(2, ds.Samples.Count);
        var s = ds.Samples[0];
        Assert.Equal(DataTestKit.Tok.BosTokenId, s.InputIds[0]);
        Assert.Equal(Batch.IgnoreIndex, s.Labels[0]);
        // Trained tokens form one run at the end, and it decodes to the text after the marker.
        var runs = DataPreview.TrainedRuns(s);
        Assert.Single(runs);
        Assert.Equal(s.Length, runs[0].End);
        Assert.Equal("\nOnce upon a time there was a cat.", DataTestKit.TrainedText(s).Replace("\u2581", " "));
        // Everything before is the prompt, marker included.
        string prompt = DataTestKit.Tok.Decode(s.InputIds[..runs[0].Start], skipSpecialTokens: true);
        Assert.EndsWith("### Response:", prompt);
        Assert.Equal(0, ds.Stats.RowsWithoutMarker);
        Assert.Equal(ds.Samples.Sum(x => (long)x.TrainedTokenCount), ds.Stats.TrainedTokens);
    }

    [Fact]
    public void NoMarker_TrainsOnEveryTokenAndCountsTheRow()
    {
        using var d = new TempDir();
        var ds = FormattedDataset.Build(d.File("d.jsonl", Rows), Alpacaish, DataTestKit.Tok,
            new FormattedOptions { TrainOnlyAfter = "### Answer:" });
        Assert.Equal(2, ds.Stats.RowsWithoutMarker);
        Assert.All(ds.Samples, s => Assert.Equal(s.Length - 1, s.TrainedTokenCount));
    }

    [Fact]
    public void AddEosToken_AppendsOneTrainedEos()
    {
        using var d = new TempDir();
        var ds = FormattedDataset.Build(d.File("d.jsonl", Rows), Alpacaish, DataTestKit.Tok,
            new FormattedOptions { AddEosToken = true, TrainOnlyAfter = "### Response:" });
        int eos = DataTestKit.Tok.EosTokenId;
        Assert.All(ds.Samples, s =>
        {
            Assert.Equal(eos, s.InputIds[^1]);
            Assert.Equal(eos, s.Labels[^1]);
            Assert.NotEqual(eos, s.InputIds[^2]);
        });
    }

    [Fact]
    public void ExcessLength_DropAndTruncate()
    {
        using var d = new TempDir();
        string p = d.File("d.jsonl", Rows);
        var full = FormattedDataset.Build(p, Alpacaish, DataTestKit.Tok, new FormattedOptions());
        int longest = full.Samples.Max(s => s.Length), shortest = full.Samples.Min(s => s.Length);
        Assert.True(shortest < longest);
        int cutoff = shortest;
        var dropped = FormattedDataset.Build(p, Alpacaish, DataTestKit.Tok, new FormattedOptions { CutoffLength = cutoff, ExcessLength = ExcessLength.Drop });
        Assert.Single(dropped.Samples);
        Assert.Equal(1, dropped.Stats.DroppedTooLong);
        var cut = FormattedDataset.Build(p, Alpacaish, DataTestKit.Tok, new FormattedOptions { CutoffLength = cutoff });
        Assert.Equal(2, cut.Samples.Count);
        Assert.Equal(1, cut.Stats.Truncated);
        Assert.All(cut.Samples, s => Assert.True(s.Length <= cutoff));
        int li = full.Samples.ToList().FindIndex(s => s.Length == longest);
        Assert.Equal(full.Samples[li].InputIds[..cutoff], cut.Samples[li].InputIds);
    }

    [Fact]
    public void EmptyAfterFiltering_SaysWhatFilteredIt()
    {
        using var d = new TempDir();
        string p = d.File("d.jsonl", Rows);
        var e = Assert.Throws<DatasetException>(() => FormattedDataset.Build(p, Alpacaish, DataTestKit.Tok,
            new FormattedOptions { CutoffLength = 4, ExcessLength = ExcessLength.Drop }));
        Assert.Contains("empty after filtering", e.Message);
        Assert.Contains("2 sample(s) were longer than cutoff_len 4", e.Message);
        // Marker past the cutoff: every sample truncated to the prompt has nothing to train.
        var e2 = Assert.Throws<DatasetException>(() => FormattedDataset.Build(p, Alpacaish, DataTestKit.Tok,
            new FormattedOptions { CutoffLength = 6, TrainOnlyAfter = "### Response:" }));
        Assert.Contains("no trained token", e2.Message);
        var e3 = Assert.Throws<DatasetException>(() => FormattedDataset.Build(d.File("empty.jsonl", "\n\n"), Alpacaish, DataTestKit.Tok, new FormattedOptions()));
        Assert.Contains("no rows", e3.Message);
    }

    [Fact]
    public void MissingField_NamesRowAndLine()
    {
        using var d = new TempDir();
        string p = d.File("d.jsonl", Rows + "\n{\"instruction\": \"only this\"}\n");
        var e = Assert.Throws<DatasetException>(() => FormattedDataset.Build(p, Alpacaish, DataTestKit.Tok, new FormattedOptions()));
        Assert.Equal(3, e.Row);
        Assert.Equal(3, e.Line);
        Assert.Contains("[instruction]", e.Message);
    }

    [Fact]
    public void CutoffLongerThanContext_IsRefused()
    {
        using var d = new TempDir();
        var e = Assert.Throws<DatasetException>(() => FormattedDataset.Build(d.File("d.jsonl", Rows), Alpacaish, DataTestKit.Tok,
            new FormattedOptions { CutoffLength = 1024, ContextLength = 512 }));
        Assert.Contains("cutoff_len 1024", e.Message);
        Assert.Contains("512", e.Message);
    }

    [Fact]
    public void TemplateWithBos_DoesNotDoubleBos()
    {
        var f = FormatFile.Parse("""{"instruction,output": "<s>[INST] %instruction% [/INST] %output% </s>"}""", "llama2");
        var rows = JsonRows.Parse("""{"instruction": "Hi", "output": "Hello"}"""u8, "mem");
        var ds = FormattedDataset.Build(rows, "mem", f, DataTestKit.Tok, new FormattedOptions { TrainOnlyAfter = "[/INST]" });
        var ids = ds.Samples[0].InputIds;
        Assert.Equal(DataTestKit.Tok.BosTokenId, ids[0]);
        Assert.NotEqual(DataTestKit.Tok.BosTokenId, ids[1]);
        Assert.Equal(DataTestKit.Tok.EosTokenId, ids[^1]);
        Assert.Equal(DataTestKit.Tok.EosTokenId, ds.Samples[0].Labels[^1]);
    }
}
