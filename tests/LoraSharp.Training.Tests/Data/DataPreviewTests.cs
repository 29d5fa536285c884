// The preview file: JSON with text, ids, pieces and trained flags that match the samples; and the plain-text view.
using System.Text.Json;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class DataPreviewTests
{
    [Fact]
    public void Json_ShowsTextPiecesAndTrainedTokens()
    {
        using var d = new TempDir();
        var f = FormatFile.Parse("""{"instruction,output": "Q: %instruction%\nA: %output%"}""", "f");
        var rows = JsonRows.Parse("""
            {"instruction": "Who sat?", "output": "The cat."}
            {"instruction": "Who ran?", "output": "The dog."}
            {"instruction": "Who hid?", "output": "The bird."}
            """u8, "mem");
        var ds = FormattedDataset.Build(rows, "mem", f, DataTestKit.Tok, new FormattedOptions { TrainOnlyAfter = "A:" });
        string path = Path.Combine(d.Root, "out", "preview.json");
        DataPreview.Write(path, ds.Samples, DataTestKit.Tok, 2);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        Assert.Equal(3, doc.RootElement.GetProperty("samples_total").GetInt32());
        var shown = doc.RootElement.GetProperty("samples").EnumerateArray().ToList();
        Assert.Equal(2, shown.Count);
        var s0 = shown[0];
        Assert.Contains("Who sat?", s0.GetProperty("text").GetString());
        var tokens = s0.GetProperty("tokens").EnumerateArray().ToList();
        Assert.Equal(ds.Samples[0].InputIds, tokens.Select(t => t.GetProperty("id").GetInt32()));
        Assert.Equal(ds.Samples[0].Labels.Select(l => l != -100), tokens.Select(t => t.GetProperty("trained").GetBoolean()));
        Assert.Equal(DataTestKit.Tok.IdToToken(ds.Samples[0].InputIds[1]), tokens[1].GetProperty("piece").GetString());
        Assert.Equal(ds.Samples[0].TrainedTokenCount, s0.GetProperty("trained_tokens").GetInt32());
        Assert.Contains("The cat.", s0.GetProperty("trained_text")[0].GetString());
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp-*"));
    }

    [Fact]
    public void Text_MarksTrainedSpans()
    {
        using var d = new TempDir();
        var s = new TrainingSample(DataTestKit.Tok.EncodeToIds("The cat sat."), DataTestKit.Tok.EncodeToIds("The cat sat."));
        for (int t = 0; t < 3; t++) s.Labels[t] = -100;
        string path = Path.Combine(d.Root, "preview.txt");
        DataPreview.Write(path, [s], DataTestKit.Tok, 5);
        string text = File.ReadAllText(path);
        Assert.Contains("1 of 1 samples", text);
        Assert.Contains("⟦", text);
        Assert.Contains("*", text);
    }
}
