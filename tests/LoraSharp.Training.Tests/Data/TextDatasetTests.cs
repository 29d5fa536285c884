// {"text": ...} datasets: rows joined with EOS into one stream, chunked with BOS per chunk, with a stride.
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class TextDatasetTests
{
    private const string Rows = """
        [{"text": "The cat sat on the mat and looked at the sun."},
         {"text": "A dog ran to the park.", "id": 5},
         {"text": ""},
         {"text": "They played all day long and were happy."}]
        """;

    private static List<int> Stream()
    {
        var s = new List<int>();
        foreach (var t in new[] { "The cat sat on the mat and looked at the sun.", "A dog ran to the park.", "They played all day long and were happy." })
        {
            s.AddRange(DataTestKit.Tok.EncodeToIds(t, addSpecialTokens: false));
            s.Add(DataTestKit.Tok.EosTokenId);
        }
        return s;
    }

    private static BuiltDataset Build(TextOptions o) =>
        TextDataset.Build(JsonRows.Parse(System.Text.Encoding.UTF8.GetBytes(Rows), "t.json"), "t.json", DataTestKit.Tok, o);

    [Fact]
    public void Chunks_ConcatenateRowsWithEos()
    {
        var ds = Build(new TextOptions { CutoffLength = 12 });
        var stream = Stream();
        var joined = ds.Samples.SelectMany(s => { Assert.Equal(DataTestKit.Tok.BosTokenId, s.InputIds[0]); return s.InputIds[1..]; }).ToList();
        Assert.Equal(stream, joined);
        Assert.All(ds.Samples, s => Assert.True(s.Length <= 12));
        Assert.Equal(3, joined.Count(id => id == DataTestKit.Tok.EosTokenId));
    }

    [Fact]
    public void Stride_StartsChunksEveryStrideTokens()
    {
        var ds = Build(new TextOptions { CutoffLength = 12, Stride = 4 });
        var stream = Stream();
        for (int i = 0; i < ds.Samples.Count; i++)
            Assert.Equal(stream.Skip(4 * i).Take(11), ds.Samples[i].InputIds[1..]);
        Assert.Equal(stream[^1], ds.Samples[^1].InputIds[^1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => Build(new TextOptions { CutoffLength = 12, Stride = 12 }));
    }

    [Fact]
    public void MissingTextField_NamesRow()
    {
        var rows = JsonRows.Parse("""[{"text": "a"}, {"body": "b"}]"""u8, "t.json");
        var e = Assert.Throws<DatasetException>(() => TextDataset.Build(rows, "t.json", DataTestKit.Tok, new TextOptions()));
        Assert.Equal(2, e.Row);
        Assert.Contains("\"text\"", e.Message);
        Assert.Contains("body", e.Message);
    }
}
