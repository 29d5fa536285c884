// Conformance against independent references: the stories260K golden ids (llama2.c / HF tokenizers / SentencePiece /
// llama.cpp agree on them), llama.cpp's vocabulary test cases (.inp -> .out, vocabulary read from the GGUF), and
// tiktoken-style GPT-2 ids for lib.rs.txt.
using System.Text.Json;
using LoraSharp.TestSupport;

namespace LoraSharp.Tokenizers.Tests;

public class ConformanceTests
{
    [Fact]
    public void Stories260K_TokenizerJson_MatchesAllGoldenIds()
    {
        var golden = Fixtures.StoriesGolden();
        Assert.Equal(20, golden.Count);
        foreach (var (text, ids) in golden)
            Assert.True(ids.SequenceEqual(Fixtures.Stories.EncodeToIds(text, addSpecialTokens: false)),
                $"'{text}': expected [{string.Join(' ', ids)}] got [{string.Join(' ', Fixtures.Stories.EncodeToIds(text, false))}]");
    }

    [Fact]
    public void Stories260K_GgufVocabulary_MatchesAllGoldenIds()
    {
        foreach (var (text, ids) in Fixtures.StoriesGolden())
            Assert.True(ids.SequenceEqual(Fixtures.StoriesGguf.EncodeToIds(text, addSpecialTokens: false, parseSpecialTokens: false)),
                $"'{text}': expected [{string.Join(' ', ids)}] got [{string.Join(' ', Fixtures.StoriesGguf.EncodeToIds(text, false, false))}]");
    }

    [Fact]
    public void Stories260K_AddSpecialTokens_PutsBosFirst()
    {
        var ids = Fixtures.Stories.EncodeToIds("Hello world");
        Assert.Equal([1, 346, 306, 414, 263, 304, 341], ids);
        Assert.Equal(1, Fixtures.Stories.BosTokenId);
        Assert.Equal(2, Fixtures.Stories.EosTokenId);
        Assert.Equal(0, Fixtures.Stories.UnkTokenId);
        Assert.Equal(512, Fixtures.Stories.VocabSize);
        Assert.True(Fixtures.Stories.AddBos);
        Assert.False(Fixtures.Stories.AddEos);
    }

    [Theory]
    [InlineData("llama-spm")]
    [InlineData("phi-3")]
    [InlineData("gpt-2")]
    public void LlamaCppVocab_EveryCase_MatchesOut(string vocab)
    {
        var tok = Fixtures.Gguf(vocab);
        var cases = GgufTestVocab.Cases(Fixtures.VocabGguf(vocab));
        Assert.True(cases.Count > 30);
        var failures = new List<string>();
        foreach (var (text, ids) in cases)
        {
            var got = tok.EncodeToIds(text, addSpecialTokens: false, parseSpecialTokens: false);
            if (!got.SequenceEqual(ids))
                failures.Add($"{JsonSerializer.Serialize(text)}: expected [{string.Join(' ', ids)}] got [{string.Join(' ', got)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{cases.Count} cases differ:\n" + string.Join('\n', failures));
    }

    [Fact]
    public void Phi3_TokenizerJsonAndGguf_GiveSameIdsOnEveryCase()
    {
        var gguf = Fixtures.Gguf("phi-3");
        foreach (var (text, ids) in GgufTestVocab.Cases(Fixtures.VocabGguf("phi-3")))
        {
            Assert.Equal(ids, Fixtures.Phi3Json.EncodeToIds(text, addSpecialTokens: false));
            Assert.Equal(gguf.EncodeToIds(text, false), Fixtures.Phi3Json.EncodeToIds(text, false));
        }
    }

    [Fact]
    public void Gpt2_EncoderJsonAndVocabBpe_MatchesTokensForLibRs()
    {
        string text = File.ReadAllText(SharedFixtures.Path("tokenizers", "gpt2-bpe", "lib.rs.txt"));
        int[] expected = JsonSerializer.Deserialize<int[]>(File.ReadAllText(SharedFixtures.Path("tokenizers", "gpt2-bpe", "tokens_gpt2.json")))!;
        var got = Fixtures.Gpt2Files.EncodeToIds(text, addSpecialTokens: false);
        Assert.Equal(expected.Length, got.Length);
        Assert.Equal(expected, got);
        Assert.Equal(text, Fixtures.Gpt2Files.Decode(got));
    }

    [Fact]
    public void Gpt2_GgufVocabulary_MatchesTokensForLibRs()
    {
        string text = File.ReadAllText(SharedFixtures.Path("tokenizers", "gpt2-bpe", "lib.rs.txt"));
        int[] expected = JsonSerializer.Deserialize<int[]>(File.ReadAllText(SharedFixtures.Path("tokenizers", "gpt2-bpe", "tokens_gpt2.json")))!;
        Assert.Equal(expected, Fixtures.Gguf("gpt-2").EncodeToIds(text, false, false));
    }
}
