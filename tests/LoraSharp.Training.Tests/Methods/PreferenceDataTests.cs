// Preference rows: text form, TRL's conversational form (prompt as a message list), the implicit-prompt form
// (chosen/rejected full conversations), cutoff handling, and the errors of malformed rows.
using LoraSharp.Training.Data;
using LoraSharp.Training.Preference;
using LoraSharp.Training.Tests.Data;

namespace LoraSharp.Training.Tests.Methods;

public class PreferenceDataTests
{
    private static PreferenceSet Build(string json, int cutoff = 256, bool truncate = false) =>
        PreferenceData.Build(JsonRows.Parse(System.Text.Encoding.UTF8.GetBytes(json), "pairs.json"), "pairs.json", DataTestKit.Tok, cutoff, truncate);

    [Fact]
    public void TextRow_PromptHasBos_ResponsesEndWithEos()
    {
        var set = Build("""[{"prompt": "Once upon a time", "chosen": " a dog ran.", "rejected": " a cat sat."}]""");
        var p = set.Pairs.Single();
        Assert.Equal(DataTestKit.Tok.BosTokenId, p.Prompt[0]);
        Assert.Equal(DataTestKit.Tok.EosTokenId, p.Chosen[^1]);
        Assert.Equal(DataTestKit.Tok.EosTokenId, p.Rejected[^1]);
        Assert.Equal(" a dog ran.", DataTestKit.Tok.Decode(p.Chosen[..^1]));
    }

    [Fact]
    public void ChatRows_ExplicitAndImplicitPrompt_GiveTheSamePair()
    {
        const string user = """{"role": "user", "content": "Tell me about the dog."}""";
        var explicitSet = Build($$"""[{"prompt": [{{user}}], "chosen": [{"role": "assistant", "content": "The dog was happy."}], "rejected": [{"role": "assistant", "content": "The dog was sad."}]}]""");
        var implicitSet = Build($$"""[{"chosen": [{{user}}, {"role": "assistant", "content": "The dog was happy."}], "rejected": [{{user}}, {"role": "assistant", "content": "The dog was sad."}]}]""");
        var a = explicitSet.Pairs.Single();
        var b = implicitSet.Pairs.Single();
        Assert.Equal(a.Prompt, b.Prompt);
        Assert.Equal(a.Chosen, b.Chosen);
        Assert.Equal(a.Rejected, b.Rejected);
        // the prompt ends with the assistant header, the response holds the reply and the end-of-turn marker
        string prompt = DataTestKit.Tok.Decode(a.Prompt), chosen = DataTestKit.Tok.Decode(a.Chosen);
        Assert.Contains("Tell me about the dog.", prompt);
        Assert.DoesNotContain("happy", prompt);
        Assert.StartsWith("The dog was happy.", chosen.TrimStart());
        Assert.Contains("im_end", chosen);
    }

    [Theory]
    [InlineData("""[{"prompt": "p", "chosen": "c"}]""", "no \"rejected\"")]
    [InlineData("""[{"chosen": "c", "rejected": "r"}]""", "string \"prompt\"")]
    [InlineData("""[{"prompt": "p", "chosen": "c", "rejected": [{"role": "assistant", "content": "r"}]}]""", "both as strings")]
    [InlineData("""[{"chosen": [{"role": "user"}], "rejected": []}]""", "chosen[0]")]
    public void MalformedRows_NameTheFileRowAndProblem(string json, string expected)
    {
        var e = Assert.Throws<DatasetException>(() => Build(json));
        Assert.Contains("pairs.json", e.Message);
        Assert.Contains("row 1", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void LongPairs_AreDroppedOrTruncatedAsExcessLengthSays()
    {
        string longText = string.Concat(Enumerable.Repeat(" and the dog ran", 30));
        string json = $$"""[{"prompt": "Once", "chosen": "{{longText}}", "rejected": " no."}, {"prompt": "Once", "chosen": " yes.", "rejected": " no."}]""";
        var dropped = Build(json, cutoff: 32);
        Assert.Equal(1, dropped.Dropped);
        Assert.Single(dropped.Pairs);
        var truncated = Build(json, cutoff: 32, truncate: true);
        Assert.Equal(1, truncated.Truncated);
        Assert.Equal(2, truncated.Pairs.Count);
        Assert.Equal(32, truncated.Pairs[0].Prompt.Length + truncated.Pairs[0].Chosen.Length);
        Assert.Throws<DatasetException>(() => Build("""[{"prompt": "Once", "chosen": " a b c d e f g h i j k l", "rejected": " x"}]""", cutoff: 3));
    }
}
