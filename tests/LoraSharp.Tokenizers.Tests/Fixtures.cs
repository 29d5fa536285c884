// Loads each fixture tokenizer once per test run (several are 128k-piece vocabularies) from ../shared.
using System.Text.Json;
using LoraSharp.TestSupport;
using LoraSharp.Tokenizers;

namespace LoraSharp.Tokenizers.Tests;

internal static class Fixtures
{
    private static readonly Lazy<Tokenizer> s_stories = new(() => TokenizerLoader.FromFile(Path.Combine(SharedFixtures.Stories260KHf, "tokenizer.json")));
    private static readonly Lazy<Tokenizer> s_storiesGguf = new(() => GgufTestVocab.Load(SharedFixtures.Path("models", "stories260K-gguf", "stories260K-F32.gguf")));
    private static readonly Lazy<Tokenizer> s_llamaJson = new(() => TokenizerLoader.FromFile(SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "llama-tiny-random")));
    private static readonly Lazy<Tokenizer> s_phi3Json = new(() => TokenizerLoader.FromFile(SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "phi3", "tokenizer.json")));
    private static readonly Lazy<Tokenizer> s_gpt2Json = new(() => TokenizerLoader.FromFile(SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "gpt2-tiny-random", "tokenizer.json")));
    private static readonly Lazy<Tokenizer> s_gpt2Files = new(() => TokenizerLoader.FromFile(SharedFixtures.Path("tokenizers", "gpt2-bpe")));
    private static readonly Lazy<Tokenizer> s_llama3Files = new(() => TokenizerLoader.FromFile(SharedFixtures.Path("tokenizers", "llama3-bpe")));
    private static readonly Dictionary<string, Lazy<Tokenizer>> s_gguf = new()
    {
        ["llama-spm"] = new(() => GgufTestVocab.Load(VocabGguf("llama-spm"))),
        ["phi-3"] = new(() => GgufTestVocab.Load(VocabGguf("phi-3"))),
        ["gpt-2"] = new(() => GgufTestVocab.Load(VocabGguf("gpt-2"))),
    };

    public static Tokenizer Stories => s_stories.Value;
    public static Tokenizer StoriesGguf => s_storiesGguf.Value;
    public static Tokenizer LlamaJson => s_llamaJson.Value;
    public static Tokenizer Phi3Json => s_phi3Json.Value;
    public static Tokenizer Gpt2Json => s_gpt2Json.Value;
    public static Tokenizer Gpt2Files => s_gpt2Files.Value;
    public static Tokenizer Llama3Files => s_llama3Files.Value;
    public static Tokenizer Gguf(string name) => s_gguf[name].Value;

    public static string VocabGguf(string name) => SharedFixtures.Path("tokenizers", "llama-cpp-vocab", $"ggml-vocab-{name}.gguf");

    public static Tokenizer ByName(string name) => name switch
    {
        "stories-json" => Stories,
        "stories-gguf" => StoriesGguf,
        "llama-json" => LlamaJson,
        "phi3-json" => Phi3Json,
        "gpt2-json" => Gpt2Json,
        "gpt2-files" => Gpt2Files,
        "llama3-files" => Llama3Files,
        _ => Gguf(name),
    };

    public static List<(string Text, int[] Ids)> StoriesGolden()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(SharedFixtures.Golden, "tokenizer_golden.json")));
        return doc.RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("text").GetString()!, e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()))
            .ToList();
    }

    private static readonly Lazy<string[]> s_warAndPeaceLines = new(() => File.ReadAllLines(SharedFixtures.Path("text", "war-and-peace.txt")));
    public static string[] WarAndPeaceLines => s_warAndPeaceLines.Value;
}
