// A GGUF file's vocabulary keys that are missing, of the wrong type or name an unknown tokenizer are the user's
// file at fault: ModelFormatException naming the file (and the key), never a bare cast error.
using LoraSharp.Formats;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Loading;

namespace LoraSharp.Models.Tests.Loading;

public class GgufTokenizerBadInputTests
{
    private static List<KeyValuePair<string, GgufValue>> Meta(params (string Key, object Value)[] kv) =>
        kv.Select(x => new KeyValuePair<string, GgufValue>(x.Key, GgufValue.From(x.Value))).ToList();

    [Fact]
    public void MissingVocabulary_NamesTheFileAndKey()
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufTokenizer.FromMetadata(Meta(("tokenizer.ggml.model", "llama")), "m.gguf"));
        Assert.Equal("m.gguf", e.FilePath);
        Assert.Contains("tokenizer.ggml.tokens", e.Message);
    }

    [Fact]
    public void KeyOfTheWrongType_IsAFormatError()
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufTokenizer.FromMetadata(Meta(("tokenizer.ggml.model", 3), ("tokenizer.ggml.tokens", new[] { "a" })), "m.gguf"));
        Assert.StartsWith("m.gguf: ", e.Message);
        Assert.Contains("wrong type", e.Message);
    }

    [Fact]
    public void UnknownTokenizerModel_IsAFormatError()
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufTokenizer.FromMetadata(Meta(("tokenizer.ggml.model", "bert"), ("tokenizer.ggml.tokens", new[] { "a" })), "m.gguf"));
        Assert.Contains("'bert' is not supported", e.Message);
    }
}
