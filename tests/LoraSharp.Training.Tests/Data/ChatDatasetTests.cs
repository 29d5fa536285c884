// Chat datasets: only assistant turns (with their end marker) are trained, ShareGPT rows equal the same
// conversation written as messages, and malformed rows are refused with the row and the field.
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class ChatDatasetTests
{
    private const string Messages = """
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Question one?"}, {"role": "assistant", "content": "Reply one."}, {"role": "user", "content": "Question two?"}, {"role": "assistant", "content": "Reply two."}]}
        """;

    private const string ShareGpt = """
        {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Question one?"}, {"from": "gpt", "value": "Reply one."}, {"from": "human", "value": "Question two?"}, {"from": "gpt", "value": "Reply two."}]}
        """;

    private static BuiltDataset Build(string jsonl, ChatOptions? o = null) =>
        ChatDataset.Build(JsonRows.Parse(System.Text.Encoding.UTF8.GetBytes(jsonl), "chat.jsonl"), "chat.jsonl", new ChatMLFormatter(), DataTestKit.Tok, o ?? new ChatOptions());

    [Fact]
    public void Messages_TrainOnlyAssistantTurns()
    {
        var s = Build(Messages).Samples.Single();
        var runs = DataPreview.TrainedRuns(s);
        Assert.Equal(2, runs.Count);
        string r1 = DataTestKit.Tok.Decode(s.InputIds[runs[0].Start..runs[0].End]);
        string r2 = DataTestKit.Tok.Decode(s.InputIds[runs[1].Start..runs[1].End]);
        Assert.Equal("Reply one.<|im_end|>", r1);
        Assert.Equal("Reply two.<|im_end|>", r2);
        string untrained = DataTestKit.Tok.Decode(s.InputIds[..runs[0].Start]);
        Assert.EndsWith("<|im_start|>assistant\n", untrained);
        Assert.Contains("Question one?", untrained);
    }

    [Fact]
    public void ShareGpt_EqualsTheSameMessages()
    {
        var a = Build(Messages).Samples.Single();
        var b = Build(ShareGpt).Samples.Single();
        Assert.Equal(a.InputIds, b.InputIds);
        Assert.Equal(a.Labels, b.Labels);
    }

    [Fact]
    public void Truncation_KeepsTheFirstAssistantTurn()
    {
        var full = Build(Messages).Samples.Single();
        var runs = DataPreview.TrainedRuns(full);
        int cutoff = runs[1].Start;
        var cut = Build(Messages, new ChatOptions { CutoffLength = cutoff }).Samples.Single();
        Assert.Equal(full.InputIds[..cutoff], cut.InputIds);
        Assert.Single(DataPreview.TrainedRuns(cut));
    }

    [Theory]
    [InlineData("""{"text": "hi"}""", "needs \"messages\"")]
    [InlineData("""{"messages": "hi"}""", "must be an array")]
    [InlineData("""{"messages": [{"role": "user"}]}""", "messages[0] has no string \"content\"")]
    [InlineData("""{"conversations": [{"from": "robot", "value": "x"}]}""", "\"from\": \"robot\"")]
    [InlineData("""{"messages": [{"role": "user", "content": "x"}]}""", "no assistant message")]
    [InlineData("""{"messages": []}""", "is empty")]
    public void BadRow_NamesRowAndProblem(string row, string expected)
    {
        var e = Assert.Throws<DatasetException>(() => Build(Messages + "\n" + row));
        Assert.Equal(2, e.Row);
        Assert.Contains(expected, e.Message);
        Assert.Contains("chat.jsonl", e.Message);
    }
}

public class ChatTemplateFormatterTests
{
    private const string Row = """
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Question one?"}, {"role": "assistant", "content": "Reply one."}, {"role": "user", "content": "Question two?"}, {"role": "assistant", "content": "Reply two."}]}
        """;

    private static TrainingSample Build(IChatFormatter f) =>
        ChatDataset.Build(JsonRows.Parse(System.Text.Encoding.UTF8.GetBytes(Row), "c"), "c", f, DataTestKit.Tok, new ChatOptions()).Samples.Single();

    [Fact]
    public void ChatMLTemplate_MatchesBuiltInChatMLFormatter()
    {
        var a = Build(new ChatMLFormatter());
        var b = Build(ChatTemplateFormatter.FromName("chatml", DataTestKit.Tok));
        Assert.Equal(a.InputIds, b.InputIds);
        Assert.Equal(a.Labels, b.Labels);
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("mistral")]
    [InlineData("alpaca")]
    [InlineData("zephyr")]
    [InlineData("phi3")]
    public void EveryTemplate_TrainsBothRepliesAndNoQuestion(string name)
    {
        var s = Build(ChatTemplateFormatter.FromName(name, DataTestKit.Tok));
        string trained = DataTestKit.TrainedText(s);
        Assert.Contains("Reply one.", trained);
        Assert.Contains("Reply two.", trained);
        Assert.DoesNotContain("Question", trained);
        Assert.DoesNotContain("kind", trained);
        Assert.Equal(DataTestKit.Tok.BosTokenId, s.InputIds[0]);
        Assert.NotEqual(DataTestKit.Tok.BosTokenId, s.InputIds[1]);
    }

    [Fact]
    public void UnknownRole_IsDatasetErrorWithRow()
    {
        string bad = """{"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}""";
        var e = Assert.Throws<DatasetException>(() => ChatDataset.Build(JsonRows.Parse(System.Text.Encoding.UTF8.GetBytes(Row + "\n" + bad), "c.jsonl"), "c.jsonl",
            ChatTemplateFormatter.FromName("llama3", DataTestKit.Tok), DataTestKit.Tok, new ChatOptions()));
        Assert.Equal(2, e.Row);
        Assert.Contains("tool", e.Message);
    }
}
