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

    [Fact]
    public void Llama3_LibRs_MatchesCl100kIdsExceptWhereLlama3HasALongerPiece()
    {
        // tokens.json is tiktoken cl100k_base for lib.rs.txt. Llama-3 keeps cl100k's first 100k pieces and pattern and adds
        // 28k pieces, so its ids must equal cl100k's except where one new piece (id >= 100000) replaces several old ones.
        string text = File.ReadAllText(SharedFixtures.Path("tokenizers", "gpt2-bpe", "lib.rs.txt"));
        int[] cl100k = JsonSerializer.Deserialize<int[]>(File.ReadAllText(SharedFixtures.Path("tokenizers", "gpt2-bpe", "tokens.json")))!;
        var tok = Fixtures.Llama3Files;
        int[] got = tok.EncodeToIds(text, addSpecialTokens: false);
        Assert.Equal(text, tok.Decode(cl100k));
        int i = 0, j = 0, replaced = 0;
        while (i < got.Length && j < cl100k.Length)
        {
            if (got[i] == cl100k[j]) { i++; j++; continue; }
            Assert.True(got[i] >= 100_000, $"token {i}: Llama-3 id {got[i]} where cl100k has {cl100k[j]}");
            string piece = tok.Decode([got[i]]);
            int k = j;
            var sb = new System.Text.StringBuilder();
            while (k < cl100k.Length && sb.Length < piece.Length) sb.Append(tok.Decode([cl100k[k++]]));
            Assert.Equal(piece, sb.ToString());
            i++; j = k; replaced++;
        }
        Assert.Equal((got.Length, cl100k.Length), (i, j));
        Assert.InRange(replaced, 1, 50);
    }
}
