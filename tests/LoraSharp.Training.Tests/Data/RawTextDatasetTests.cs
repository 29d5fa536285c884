// Raw text chunking with stories260K's tokenizer: windows with exact token overlap that together cover the block,
// hard cuts no chunk spans, small-block skipping, EOS at hard cuts, natural file order, newline favouring, and errors.
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class RawTextDatasetTests
{
    private static string Words(string word, int n) => string.Join(' ', Enumerable.Range(0, n).Select(i => $"{word}{i % 7}"));

    private static RawTextOptions Opt(int cutoff, int overlap, int favor = 0) =>
        new() { CutoffLength = cutoff, OverlapLength = overlap, NewlineFavorLength = favor };

    [Theory]
    [InlineData(16, 4)]
    [InlineData(16, 0)]
    [InlineData(9, 7)]
    public void Chunks_OverlapExactly_AndCoverTheBlock(int cutoff, int overlap)
    {
        string text = Words("cat", 60);
        var ds = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(cutoff, overlap));
        int[] all = DataTestKit.Tok.EncodeToIds(text, addSpecialTokens: false);
        int window = cutoff - 1, step = window - overlap;
        Assert.Equal((all.Length - window + step - 1) / step + 1, ds.Samples.Count);
        for (int i = 0; i < ds.Samples.Count; i++)
        {
            var s = ds.Samples[i];
            Assert.Equal(DataTestKit.Tok.BosTokenId, s.InputIds[0]);
            Assert.True(s.Length <= cutoff);
            Assert.Equal(all.Skip(i * step).Take(window), s.InputIds[1..]);
            Assert.Equal(s.InputIds, s.Labels);
        }
        Assert.Equal(all[^1], ds.Samples[^1].InputIds[^1]);
    }

    [Fact]
    public void HardCut_NoChunkSpansIt()
    {
        string text = Words("cat", 40) + "\n\n\n" + Words("dog", 40);
        var ds = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(24, 8));
        Assert.Equal(2, ds.Stats.Rows);
        Assert.All(ds.Samples, s =>
        {
            string t = DataTestKit.Tok.Decode(s.InputIds);
            Assert.False(t.Contains("cat") && t.Contains("dog"), t);
        });
        Assert.Contains(ds.Samples, s => DataTestKit.Tok.Decode(s.InputIds).Contains("dog"));
        // Without a hard cut one chunk does span the seam.
        var joined = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(24, 8) with { HardCutString = "" });
        Assert.Contains(joined.Samples, s => DataTestKit.Tok.Decode(s.InputIds) is var t && t.Contains("cat") && t.Contains("dog"));
    }

    [Fact]
    public void EscapedHardCut_IsANewline()
    {
        string text = Words("cat", 10) + "\n\n" + Words("dog", 10);
        var ds = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(256, 0) with { HardCutString = "\\n\\n" });
        Assert.Equal(2, ds.Samples.Count);
    }

    [Fact]
    public void MinChars_SkipsBlocksNotLongerThanIt()
    {
        string text = "hi\n\n\n   \n\n\n" + Words("cat", 10) + "\n\n\nabcd";
        var ds = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(256, 0) with { MinChars = 4 });
        Assert.Single(ds.Samples);
        Assert.Equal(3, ds.Stats.SkippedShortBlocks);
        var all = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(256, 0));
        Assert.Equal(3, all.Samples.Count);
        Assert.Equal(1, all.Stats.SkippedShortBlocks);
    }

    [Fact]
    public void AddEos_EndsEachBlockOnly()
    {
        string text = Words("cat", 50) + "\n\n\n" + Words("dog", 5);
        var ds = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(20, 4) with { AddEosToken = true });
        int eos = DataTestKit.Tok.EosTokenId;
        var endsWithEos = ds.Samples.Select(s => s.InputIds[^1] == eos).ToList();
        Assert.Equal(2, endsWithEos.Count(x => x));
        Assert.True(endsWithEos[^1]);
        Assert.All(ds.Samples, s => Assert.Equal(s.InputIds, s.Labels));
        Assert.All(ds.Samples, s => Assert.DoesNotContain(eos, s.InputIds[..^1]));
    }

    [Fact]
    public void Folder_ReadsTxtInNaturalOrder_EachFileAHardCut()
    {
        using var d = new TempDir();
        d.File("part10.txt", "The dog ran far away.");
        d.File("part2.txt", "The cat sat on the mat.");
        d.File("notes.md", "ignored");
        var ds = RawTextDataset.Build(d.Root, DataTestKit.Tok, Opt(256, 0));
        Assert.Equal(2, ds.Samples.Count);
        Assert.Equal("The cat sat on the mat.", DataTestKit.Tok.Decode(ds.Samples[0].InputIds, skipSpecialTokens: true));
        Assert.Equal("The dog ran far away.", DataTestKit.Tok.Decode(ds.Samples[1].InputIds, skipSpecialTokens: true));
    }

    [Fact]
    public void NewlineFavor_DropsPartialLinesAtTheEdges()
    {
        string text = "Tail of a line\nThe cat sat on the mat.\nThe dog ran.\nHead of";
        var favored = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(256, 0, favor: 20));
        Assert.Equal("The cat sat on the mat.\nThe dog ran.", DataTestKit.Tok.Decode(favored.Samples[0].InputIds, skipSpecialTokens: true));
        var plain = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(256, 0));
        Assert.Equal(text, DataTestKit.Tok.Decode(plain.Samples[0].InputIds, skipSpecialTokens: true));
        // A newline farther from the edge than the favour length is left alone.
        var far = RawTextDataset.Build([text], "mem", DataTestKit.Tok, Opt(256, 0, favor: 5));
        Assert.Equal(text, DataTestKit.Tok.Decode(far.Samples[0].InputIds, skipSpecialTokens: true));
    }

    [Fact]
    public void AllBlocksTooSmall_EmptyDatasetErrorNamesMinChars()
    {
        var e = Assert.Throws<DatasetException>(() => RawTextDataset.Build(["ab\n\n\ncd"], "tiny.txt", DataTestKit.Tok, Opt(64, 0) with { MinChars = 10 }));
        Assert.Contains("tiny.txt", e.Message);
        Assert.Contains("min_chars", e.Message);
    }

    [Fact]
    public void BadOptions_AreRefused()
    {
        Assert.Throws<DatasetException>(() => RawTextDataset.Build(["x y z"], "m", DataTestKit.Tok, Opt(16, 15)));
        var e = Assert.Throws<DatasetException>(() => RawTextDataset.Build(["x y z"], "m", DataTestKit.Tok, Opt(1024, 0) with { ContextLength = 512 }));
        Assert.Contains("context of 512", e.Message);
        Assert.Throws<DatasetException>(() => RawTextDataset.Build(Path.Combine(Path.GetTempPath(), "missing-" + Guid.NewGuid()), DataTestKit.Tok, Opt(16, 0)));
        using var d = new TempDir();
        Assert.Contains("no .txt", Assert.Throws<DatasetException>(() => RawTextDataset.Build(d.Root, DataTestKit.Tok, Opt(16, 0))).Message);
    }
}
