// Invalid UTF-8, lone surrogates and long lines: handled like the reference tokenizers, never a crash.
using System.Text;

namespace LoraSharp.Tokenizers.Tests;

public class BadInputTests
{
    [Theory]
    [InlineData("stories-json")]
    [InlineData("llama-spm")]
    [InlineData("gpt2-files")]
    [InlineData("llama3-files")]
    public void InvalidUtf8_IsReplacedByU_FFFD(string name)
    {
        var tok = Fixtures.ByName(name);
        byte[] bad = [(byte)'a', 0xC3, (byte)'b', 0xFF, 0xE2, 0x82, (byte)'c'];
        // 0xC3 (truncated), 0xFF (never valid) and E2 82 (truncated) each become one U+FFFD.
        Assert.Equal(tok.EncodeToIds("a\uFFFDb\uFFFD\uFFFDc", false), tok.EncodeToIds(bad, false));
        Assert.Equal("a\uFFFDb\uFFFD\uFFFDc", tok.Decode(tok.EncodeToIds(bad, false)));
    }

    [Theory]
    [InlineData("stories-json")]
    [InlineData("gpt2-files")]
    public void LoneSurrogate_EncodesAsReplacementCharacter(string name)
    {
        var tok = Fixtures.ByName(name);
        Assert.Equal(tok.EncodeToIds("x\uFFFDy", false), tok.EncodeToIds("x\uD800y", false));
    }

    [Theory]
    [InlineData("stories-json")]
    [InlineData("gpt2-files")]
    public void Decode_ByteTokensThatAreNotUtf8_GiveReplacementCharacter(string name)
    {
        var tok = Fixtures.ByName(name);
        // The first byte of "é" (C3) alone.
        int[] ids = name == "stories-json" ? [tok.TokenToId("<0xC3>")!.Value] : [tok.TokenToId("Ã")!.Value];
        Assert.Equal("\uFFFD", tok.Decode(ids));
    }

    [Theory]
    [InlineData("stories-json")]
    [InlineData("llama-json")]
    [InlineData("gpt2-files")]
    [InlineData("llama3-files")]
    public void LongLineWithoutSpaces_100KB_EncodesAndRoundTrips(string name)
    {
        var tok = Fixtures.ByName(name);
        var rng = new Random(1234);
        var sb = new StringBuilder(100_000);
        while (sb.Length < 100_000) sb.Append((char)('a' + rng.Next(26)));
        string text = sb.ToString();
        var ids = tok.EncodeToIds(text, false);
        Assert.InRange(ids.Length, 10_000, 100_000);
        Assert.Equal(text, tok.Decode(ids));
    }

    [Fact]
    public void Decode_IdOutOfRange_Throws()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Fixtures.Stories.Decode([5000]));
        Assert.Contains("5000", e.Message);
    }
}
