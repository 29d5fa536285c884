// Every llama.cpp tokenizer.ggml.pre type LoraSharp knows splits llama.cpp's own vocab-test inputs (and a few
// extra strings: camel case, contractions, digits, CJK, diacritics, Chameleon sentinels, CRLF) exactly as Python's
// `regex` module splits them with llama.cpp's patterns applied stage by stage (Data/pre-tokenizers/expected.json,
// written by generate_expected.py). Aliases of a type split like the type; unknown names keep a clear error.
using System.Text.Json;

namespace LoraSharp.Tokenizers.Tests;

public class PreTokenizerLlamaCppTests
{
    private static readonly Lazy<JsonDocument> s_expected = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "pre-tokenizers", "expected.json"))));

    public static TheoryData<string> Types()
    {
        var d = new TheoryData<string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "pre-tokenizers", "expected.json")));
        foreach (var p in doc.RootElement.GetProperty("splits").EnumerateObject()) d.Add(p.Name);
        return d;
    }

    private static List<string> Split(PreTokenizer pre, string text)
    {
        var words = new List<(int Start, int End)>();
        pre.Split(text, words);
        int at = 0;
        foreach (var (s, e) in words)
        {
            Assert.Equal(at, s);
            Assert.True(e > s, $"{pre.Name}: empty piece at {s}");
            at = e;
        }
        Assert.Equal(text.Length, at);
        return words.Select(w => text[w.Start..w.End]).ToList();
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Type_SplitsLlamaCppTestInputsLikeTheReferenceRegexes(string name)
    {
        var root = s_expected.Value.RootElement;
        var cases = root.GetProperty("cases").EnumerateArray().Select(c => c.GetString()!).ToList();
        var splits = root.GetProperty("splits").GetProperty(name).EnumerateArray().ToList();
        var pre = PreTokenizer.FromGgufName(name);
        for (int i = 0; i < cases.Count; i++)
        {
            var want = splits[i].EnumerateArray().Select(x => x.GetString()!).ToList();
            Assert.True(want.SequenceEqual(Split(pre, cases[i])), $"{name} case {i} {JsonSerializer.Serialize(cases[i])}: expected {JsonSerializer.Serialize(want)}, got {JsonSerializer.Serialize(Split(pre, cases[i]))}");
        }
    }

    [Theory]
    [InlineData("llama3", "llama-bpe")] [InlineData("llama-v3", "llama-bpe")] [InlineData("falcon3", "llama-bpe")] [InlineData("pixtral", "llama-bpe")]
    [InlineData("dbrx", "llama-bpe")] [InlineData("smaug-bpe", "llama-bpe")] [InlineData("chatglm-bpe", "llama-bpe")] [InlineData("glm4", "llama-bpe")]
    [InlineData("deepseek-r1-qwen", "qwen2")] [InlineData("stablelm2", "qwen2")] [InlineData("megrez", "qwen2")] [InlineData("hunyuan", "qwen2")]
    [InlineData("starcoder", "smollm")] [InlineData("refact", "smollm")] [InlineData("command-r", "smollm")] [InlineData("exaone", "smollm")]
    [InlineData("codeshell", "smollm")] [InlineData("minerva-7b", "smollm")]
    [InlineData("mpt", "gpt-2")] [InlineData("olmo", "gpt-2")] [InlineData("jais", "gpt-2")] [InlineData("phi-2", "gpt-2")] [InlineData("gpt2", "gpt-2")]
    [InlineData("bloom", "poro-chat")] [InlineData("gpt3-finnish", "poro-chat")] [InlineData("llama4", "gpt-4o")] [InlineData("hunyuan-dense", "deepseek-v3")]
    public void Alias_SplitsLikeItsType(string alias, string type)
    {
        var cases = s_expected.Value.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetString()!);
        var a = PreTokenizer.FromGgufName(alias);
        var t = PreTokenizer.FromGgufName(type);
        foreach (var c in cases) Assert.Equal(Split(t, c), Split(a, c));
    }

    [Theory]
    [InlineData("llama-bpe", true)] [InlineData("tekken", true)] [InlineData("qwen2", false)] [InlineData("gpt-2", false)] [InlineData("dbrx", false)]
    public void IgnoreMerges_AsLlamaCppSetsIt(string name, bool ignore) => Assert.Equal(ignore, PreTokenizer.FromGgufName(name).IgnoreMerges);

    [Theory]
    [InlineData("kimi-k2")]
    [InlineData("made-up-pre")]
    public void UnknownOrCustomCodePre_IsAClearError(string name)
    {
        var ex = Assert.Throws<TokenizerFormatException>(() => PreTokenizer.FromGgufName(name));
        Assert.Contains(name, ex.Message);
        Assert.Contains("deepseek-v3", ex.Message);
    }

    [Fact]
    public void MissingPre_IsLlamaCppsDefault()
    {
        var cases = s_expected.Value.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetString()!);
        foreach (var c in cases) Assert.Equal(Split(PreTokenizer.FromGgufName("default"), c), Split(PreTokenizer.FromGgufName(null), c));
    }
}
