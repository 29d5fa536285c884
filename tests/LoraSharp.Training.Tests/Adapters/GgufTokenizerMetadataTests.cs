// The tokenizer metadata a merged GGUF gets from a Hugging Face tokenizer: EOS, BOS, add-BOS and, for chat
// vocabularies, the end-of-turn token (tokenizer.ggml.eot_token_id) that llama.cpp and Ollama stop at.
using System.Text.Json;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;

namespace LoraSharp.Training.Tests.Adapters;

public sealed class GgufTokenizerMetadataTests
{
    private static IReadOnlyDictionary<string, Formats.Gguf.GgufValue> Metadata(string folder) =>
        HfTokenizerToGguf.Metadata(Path.Combine(folder, "tokenizer.json"), Path.Combine(folder, "tokenizer_config.json"),
            LlamaConfigReader.FromHfFile(Path.Combine(SharedFixtures.Stories260KHf, "config.json"))).ToDictionary(p => p.Key, p => p.Value);

    // The id tokenizer.json's added_tokens give a content, read here independently of the converter.
    private static int AddedTokenId(string folder, string content)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")));
        return doc.RootElement.GetProperty("added_tokens").EnumerateArray()
            .Single(t => t.GetProperty("content").GetString() == content).GetProperty("id").GetInt32();
    }

    [Fact]
    public void Phi3Vocabulary_CarriesEndOfTurnEosAndAddBos()
    {
        string folder = SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "phi3");
        var m = Metadata(folder);
        Assert.Equal((uint)AddedTokenId(folder, "<|end|>"), Convert.ToUInt32(m["tokenizer.ggml.eot_token_id"].Value));
        Assert.Equal((uint)AddedTokenId(folder, "<|endoftext|>"), Convert.ToUInt32(m["tokenizer.ggml.eos_token_id"].Value));
        Assert.True(m.ContainsKey("tokenizer.ggml.add_bos_token"));
    }

    [Fact]
    public void PlainVocabulary_HasNoEndOfTurnToken()
    {
        var m = Metadata(SharedFixtures.Stories260KHf);
        Assert.False(m.ContainsKey("tokenizer.ggml.eot_token_id"));
        Assert.True(m.ContainsKey("tokenizer.ggml.eos_token_id"));
    }
}
