// The hand-written GPT-2 / Llama-3 / Qwen2 splitters against .NET Regex running the same patterns, on War and Peace
// and on seeded random strings of tricky characters (BMP only: .NET Regex sees UTF-16 units, the splitters code points).
using System.Text;
using System.Text.RegularExpressions;

namespace LoraSharp.Tokenizers.Tests;

public class PreTokenizerTests
{
    private static List<(int, int)> ByRegex(string pattern, string text)
    {
        var list = new List<(int, int)>();
        int last = 0;
        foreach (Match m in Regex.Matches(text, pattern))
        {
            if (m.Length == 0) continue;
            if (m.Index > last) list.Add((last, m.Index));
            list.Add((m.Index, m.Index + m.Length));
            last = m.Index + m.Length;
        }
        if (last < text.Length) list.Add((last, text.Length));
        return list;
    }

    private static List<(int, int)> ByHand(PreTokenizer pre, string text)
    {
        var list = new List<(int Start, int End)>();
        pre.Split(text, list);
        return list.Select(w => (w.Start, w.End)).ToList();
    }

    public static TheoryData<string> Patterns => new() { "gpt2", "llama-bpe", "qwen2" };

    private static string RegexFor(string name) => name switch
    {
        "gpt2" => PreTokenizer.Gpt2Regex,
        "llama-bpe" => PreTokenizer.Llama3Regex,
        _ => PreTokenizer.Qwen2Regex,
    };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void HandWritten_RandomStrings_MatchRegex(string name)
    {
        var pre = PreTokenizer.FromGgufName(name);
        string pattern = RegexFor(name);
        string alphabet = "aZé日 \t\r\n\u00A0\u3000'sStTmMdDrReEvVlL0123456789½²Ⅳ!?.,;-()\"“”…_#$\u2581\u200B";
        var rng = new Random(42);
        for (int iter = 0; iter < 3000; iter++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 24);
            for (int i = 0; i < len; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            string s = sb.ToString();
            Assert.True(ByRegex(pattern, s).SequenceEqual(ByHand(pre, s)),
                $"{name} differs on \"{Regex.Escape(s)}\": regex [{string.Join(",", ByRegex(pattern, s))}] hand [{string.Join(",", ByHand(pre, s))}]");
        }
    }

    [Theory]
    [MemberData(nameof(Patterns))]
    public void HandWritten_WarAndPeace_MatchesRegex(string name)
    {
        var pre = PreTokenizer.FromGgufName(name);
        string text = string.Join("\n", Fixtures.WarAndPeaceLines.Take(3000));
        Assert.True(ByRegex(RegexFor(name), text).SequenceEqual(ByHand(pre, text)));
    }

    [Fact]
    public void SupplementaryLetters_AreLettersForTheHandWrittenSplitter()
    {
        // U+1D400 MATHEMATICAL BOLD CAPITAL A is a letter: " 𝐀𝐁" is one word, like HF's Rust regex sees it.
        var words = ByHand(PreTokenizer.Gpt2, "x \U0001D400\U0001D401!");
        Assert.Equal([(0, 1), (1, 6), (6, 7)], words);
    }

    [Fact]
    public void SmolLmSplitter_SplitsEveryDigit()
    {
        var words = ByHand(PreTokenizer.FromGgufName("smollm"), "ab 123  x");
        Assert.Equal([(0, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 9)], words);
    }
}
