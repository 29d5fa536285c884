// JSON array and JSONL row reading: row numbers, line numbers, BOM, and the errors for broken JSON and non-object rows.
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class JsonRowsTests
{
    [Fact]
    public void Array_RowsCarryNumbersAndStartLines()
    {
        using var d = new TempDir();
        string p = d.File("a.json", "\uFEFF[\n  {\"a\": \"1\"},\n\n  {\"a\": \"2\",\n   \"b\": \"x\"}\n]\n");
        var rows = JsonRows.Read(p);
        Assert.Equal(2, rows.Count);
        Assert.Equal((1, 2), (rows[0].Number, rows[0].Line));
        Assert.Equal((2, 4), (rows[1].Number, rows[1].Line));
        Assert.Equal("x", rows[1].Value.GetProperty("b").GetString());
    }

    [Fact]
    public void Jsonl_SkipsBlankLinesAndCountsLines()
    {
        using var d = new TempDir();
        string p = d.File("a.jsonl", "{\"a\": \"1\"}\r\n\n{\"a\": \"2\"}\n");
        var rows = JsonRows.Read(p);
        Assert.Equal(2, rows.Count);
        Assert.Equal((2, 3), (rows[1].Number, rows[1].Line));
    }

    [Fact]
    public void Jsonl_InvalidLine_NamesFileRowAndLine()
    {
        using var d = new TempDir();
        string p = d.File("bad.jsonl", "{\"a\": \"1\"}\n{\"a\": \"2\"}\n{\"a\": \"3\"\n{\"a\": \"4\"}\n");
        var e = Assert.Throws<DatasetException>(() => JsonRows.Read(p));
        Assert.Equal(3, e.Line);
        Assert.Equal(3, e.Row);
        Assert.Contains("bad.jsonl", e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("invalid JSON", e.Message);
    }

    [Fact]
    public void Array_InvalidJson_NamesLine()
    {
        using var d = new TempDir();
        string p = d.File("bad.json", "[\n {\"a\": \"1\"},\n {\"a\": 2,,}\n]");
        var e = Assert.Throws<DatasetException>(() => JsonRows.Read(p));
        Assert.Equal(3, e.Line);
        Assert.Equal(2, e.Row);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void Array_Unclosed_SaysSo()
    {
        using var d = new TempDir();
        string p = d.File("open.json", "[\n {\"a\": \"1\"}\n");
        var e = Assert.Throws<DatasetException>(() => JsonRows.Read(p));
        Assert.Contains("open.json", e.Message);
    }

    [Fact]
    public void NonObjectRow_IsRefusedWithRowNumber()
    {
        using var d = new TempDir();
        string p = d.File("s.json", "[{\"a\": \"1\"}, \"just text\"]");
        var e = Assert.Throws<DatasetException>(() => JsonRows.Read(p));
        Assert.Equal(2, e.Row);
        Assert.Contains("a string", e.Message);
    }

    [Fact]
    public void MissingFile_IsDatasetException()
    {
        var e = Assert.Throws<DatasetException>(() => JsonRows.Read(Path.Combine(Path.GetTempPath(), "no-such-" + Guid.NewGuid() + ".json")));
        Assert.Contains("does not exist", e.Message);
    }
}

public class DatasetDetectorTests
{
    [Fact]
    public void Detect_PicksKindFromPathAndFirstRow()
    {
        using var d = new TempDir();
        Assert.Equal(DatasetKind.RawText, DatasetDetector.Detect(d.Root));
        Assert.Equal(DatasetKind.RawText, DatasetDetector.Detect(d.File("a.txt", "x")));
        Assert.Equal(DatasetKind.Chat, DatasetDetector.Detect(d.File("c.jsonl", """{"messages": []}""")));
        Assert.Equal(DatasetKind.Chat, DatasetDetector.Detect(d.File("s.json", """[{"conversations": []}]""")));
        Assert.Equal(DatasetKind.Text, DatasetDetector.Detect(d.File("t.jsonl", """{"text": "hi", "id": 3}""")));
        Assert.Equal(DatasetKind.Formatted, DatasetDetector.Detect(d.File("f.jsonl", """{"instruction": "hi", "output": "x"}""")));
        Assert.Throws<DatasetException>(() => DatasetDetector.Detect(d.File("e.json", "[]")));
    }
}
