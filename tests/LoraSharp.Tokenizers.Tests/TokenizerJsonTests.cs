// tokenizer.json / encoder.json parsing: the real files load with the right settings, and malformed files give errors
// that name the field.
using LoraSharp.TestSupport;

namespace LoraSharp.Tokenizers.Tests;

public class TokenizerJsonTests
{
    [Fact]
    public void LlamaTokenizerJson_LoadsAsSentencePieceWithByteFallback()
    {
        var tok = Assert.IsType<SentencePieceBpe>(Fixtures.LlamaJson);
        Assert.Equal(32000, tok.VocabSize);
        Assert.True(tok.ByteFallback);
        Assert.Equal(PrependScheme.Always, tok.Prepend);
        Assert.Equal((1, 2, 0, 0), (tok.BosTokenId, tok.EosTokenId, tok.UnkTokenId, tok.PadTokenId));
        Assert.True(tok.AddBos);
        // Same vocabulary as the llama-spm GGUF: the same ids on llama.cpp's cases.
        foreach (var (text, ids) in GgufTestVocab.Cases(Fixtures.VocabGguf("llama-spm")))
            Assert.Equal(ids, tok.EncodeToIds(text, addSpecialTokens: false));
    }

    [Fact]
    public void Phi3TokenizerJson_LoadsAddedTokensAndConfig()
    {
        var tok = Fixtures.Phi3Json;
        Assert.Equal(32045, tok.VocabSize); // ids 0..32044 (the GGUF pads to 32064)
        Assert.Equal(32000, tok.EosTokenId); // <|endoftext|> from tokenizer_config.json
        Assert.Equal(32000, tok.PadTokenId);
        Assert.Equal(1, tok.BosTokenId);
        int end = tok.TokenToId("<|end|>")!.Value;
        Assert.Equal(32007, end);
        var ids = tok.EncodeToIds("<|user|>\nHi<|end|>\n", addSpecialTokens: false);
        Assert.Equal(32010, ids[0]);
        Assert.Contains(end, ids);
        Assert.DoesNotContain(end, tok.EncodeToIds("<|user|>\nHi<|end|>\n", addSpecialTokens: false, parseSpecialTokens: false));
        // <|assistant|> has rstrip: the newline after it belongs to the token.
        var t = tok.EncodeToTokens("<|assistant|>\nOk", addSpecialTokens: false);
        Assert.Equal(32001, t[0].Id);
        Assert.Equal("<|assistant|>\n".Length, t[0].Length);
    }

    [Fact]
    public void Gpt2TokenizerJson_MatchesEncoderJsonOnPlainText()
    {
        var json = Assert.IsType<ByteLevelBpe>(Fixtures.Gpt2Json);
        Assert.Equal("gpt2", json.PreTokenizerName);
        Assert.Equal(50295, json.VocabSize);
        Assert.Equal(50256, json.EosTokenId);
        Assert.False(json.AddBos);
        foreach (string line in Fixtures.WarAndPeaceLines.Take(400))
        {
            if (line.Contains("  ") || line.Contains('\t')) continue; // CodeGen's added whitespace tokens differ on purpose
            Assert.Equal(Fixtures.Gpt2Files.EncodeToIds(line, false), json.EncodeToIds(line, false));
        }
        // The added whitespace runs are split out first (leftmost-longest), as HF does.
        Assert.Equal([json.TokenToId("a")!.Value, 50285, json.TokenToId("b")!.Value], json.EncodeToIds("a   b", false));
    }

    [Fact]
    public void Llama3EncoderJson_UsesLlama3PatternAndIgnoreMerges()
    {
        var tok = Assert.IsType<ByteLevelBpe>(Fixtures.Llama3Files);
        Assert.Equal("llama-bpe", tok.PreTokenizerName);
        Assert.True(tok.IgnoreMerges);
        Assert.Equal(128000, tok.VocabSize);
        // Llama-3 splits numbers in groups of three.
        var pieces = tok.EncodeToTokens("1234567", false).Select(t => t.Value).ToArray();
        Assert.Equal(["123", "456", "7"], pieces);
    }

    [Theory]
    [InlineData("{", "(json)")]
    [InlineData("[]", "(root)")]
    [InlineData("{\"version\":\"1.0\"}", "model")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"merges\":[]}}", "model.vocab")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"x\"},\"merges\":[]}}", "model.vocab.a")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", "model.merges[0]")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"ab\"]}}", "model.merges[0]")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[42]}}", "model.merges[0]")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"added_tokens\":[{\"content\":\"x\"}]}", "added_tokens[0].id")]
    [InlineData("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}", "model.vocab")]
    public void MalformedTokenizerJson_ErrorNamesTheField(string json, string field)
    {
        string dir = Path.Combine(Path.GetTempPath(), "lorasharp-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(path, json);
            var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromFile(path));
            Assert.Equal(field, e.Field);
            Assert.Contains($"'{field}'", e.Message);
            Assert.Contains("tokenizer.json", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void UnknownModelType_IsRefusedByName()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lorasharp-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}");
            var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.FromFile(dir));
            Assert.Contains("Unigram", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void FromVocabulary_MismatchedArrays_ErrorNamesTheGgufKey()
    {
        var e = Assert.Throws<TokenizerFormatException>(() => SentencePieceBpe.FromVocabulary(["a", "b"], [0f], null));
        Assert.Equal("tokenizer.ggml.scores", e.Field);
        e = Assert.Throws<TokenizerFormatException>(() => SentencePieceBpe.FromVocabulary(["a", "b"], [0f, 0f], [1, 9]));
        Assert.Equal("tokenizer.ggml.token_type", e.Field);
        e = Assert.Throws<TokenizerFormatException>(() => SentencePieceBpe.FromVocabulary(["a", "b"], [0f, 0f], null, bosTokenId: 7));
        Assert.Equal("tokenizer.ggml.bos_token_id", e.Field);
        e = Assert.Throws<TokenizerFormatException>(() => ByteLevelBpe.FromVocabulary(["a", "b"], ["ab"], null, "gpt2"));
        Assert.Equal("tokenizer.ggml.merges[0]", e.Field);
        Assert.Throws<TokenizerFormatException>(() => ByteLevelBpe.FromVocabulary(["a", "b"], [], null, "no-such-pre"));
    }
}
