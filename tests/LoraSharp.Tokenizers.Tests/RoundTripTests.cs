// Decode(Encode(x)) == x for every line of War and Peace with every fixture tokenizer, and offsets that point back
// into the text.
namespace LoraSharp.Tokenizers.Tests;

public class RoundTripTests
{
    public static TheoryData<string> Names => new()
    {
        "stories-json", "stories-gguf", "llama-json", "phi3-json", "gpt2-json", "gpt2-files", "llama3-files", "llama-spm", "phi-3", "gpt-2",
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void DecodeOfEncode_EveryWarAndPeaceLine_IsTheLine(string name)
    {
        var tok = Fixtures.ByName(name);
        var lines = Fixtures.WarAndPeaceLines;
        int failures = 0;
        string? firstFailure = null;
        foreach (string line in lines)
        {
            var ids = tok.EncodeToIds(line, addSpecialTokens: false);
            string back = tok.Decode(ids);
            if (back != line && failures++ == 0) firstFailure = $"'{line}' -> '{back}'";
        }
        Assert.True(failures == 0, $"{failures} lines differ, first: {firstFailure}");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void EncodeToTokens_Offsets_CoverTheTextInOrder(string name)
    {
        var tok = Fixtures.ByName(name);
        const string text = "Prince Andrew's  café, naïve 🙂 — 1234567 «quoted»\tend.";
        var tokens = tok.EncodeToTokens(text, addSpecialTokens: false);
        Assert.Equal(tok.EncodeToIds(text, false), tokens.Select(t => t.Id).ToArray());
        int pos = 0;
        foreach (var t in tokens)
        {
            Assert.InRange(t.Index, 0, text.Length);
            Assert.True(t.End <= text.Length);
            Assert.True(t.Index <= pos, $"token {t} starts after {pos}: a gap");
            pos = Math.Max(pos, t.End);
            Assert.Equal(tok.IdToToken(t.Id), t.Value);
        }
        Assert.Equal(text.Length, pos);
        Assert.Equal(tokens.Count, tok.CountTokens(text, false));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Decode_SkipSpecialTokens_DropsBosAndEos(string name)
    {
        var tok = Fixtures.ByName(name);
        const string text = "Hello world";
        var ids = tok.EncodeToIds(text, addSpecialTokens: false).ToList();
        if (tok.BosTokenId >= 0) ids.Insert(0, tok.BosTokenId);
        if (tok.EosTokenId >= 0) ids.Add(tok.EosTokenId);
        Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: true));
        if (tok.EosTokenId >= 0) Assert.EndsWith(tok.IdToToken(tok.EosTokenId)!, tok.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Encode_FromFourThreads_GivesTheSameIdsAsOneThread()
    {
        var lines = Fixtures.WarAndPeaceLines.Take(4000).ToArray();
        foreach (var tok in new[] { Fixtures.Stories, Fixtures.Gpt2Files })
        {
            var expected = lines.Select(l => tok.EncodeToIds(l, false)).ToArray();
            var got = new int[lines.Length][];
            Parallel.For(0, lines.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => got[i] = tok.EncodeToIds(lines[i], false));
            for (int i = 0; i < lines.Length; i++) Assert.Equal(expected[i], got[i]);
        }
    }
}
