// Format files: the shipped ones load and render, key-set matching follows webui's rule (non-empty string fields),
// and broken format files or unmatched rows give errors that name the row, its fields and the key sets.
using System.Text.Json;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class FormatFileTests
{
    private static DatasetRow Row(string json, int number = 1) => new(number, number, JsonDocument.Parse(json).RootElement.Clone());

    [Theory]
    [InlineData("alpaca-format.json", "### Response:")]
    [InlineData("alpaca-chatbot-format.json", "Assistant:")]
    [InlineData("ChatML-format.json", "<|im_start|>assistant")]
    [InlineData("llama2-chat-format.json", "[/INST]")]
    [InlineData("vicuna-format.json", "ASSISTANT:")]
    public void ShippedFormat_RendersInstructionOutputWithItsMarker(string file, string marker)
    {
        var f = FormatFile.Load(Path.Combine(DataTestKit.RepoRoot(), "formats", file));
        string text = f.Render(Row("""{"instruction": "Add 2 and 3.", "output": "5", "input": ""}"""), "d.json");
        Assert.Contains("Add 2 and 3.", text);
        int m = text.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(m >= 0, $"{file}: marker '{marker}' missing from: {text}");
        Assert.Contains("5", text[(m + marker.Length)..]);
        Assert.DoesNotContain("%", text);
        string withInput = f.Render(Row("""{"instruction": "Add.", "input": "2 and 3", "output": "5"}"""), "d.json");
        Assert.Contains("2 and 3", withInput);
    }

    [Fact]
    public void Render_PicksTemplateByNonEmptyStringFields()
    {
        var f = FormatFile.Parse("""{"a,b": "A=%a% B=%b%", " a , b , c ": "%a%|%b%|%c%"}""", "fmt.json");
        Assert.Equal("A=1 B=2", f.Render(Row("""{"a": "1", "b": "2", "c": "  ", "n": 7, "z": null}"""), "d"));
        Assert.Equal("1|2|3", f.Render(Row("""{"c": "3", "b": "2", "a": "1"}"""), "d"));
    }

    [Fact]
    public void Render_ReplacesInOnePass_ValueWithPlaceholderStaysLiteral()
    {
        var f = FormatFile.Parse("""{"a,b": "%a%/%b%"}""", "fmt.json");
        Assert.Equal("%b%/x", f.Render(Row("""{"a": "%b%", "b": "x"}"""), "d"));
    }

    [Fact]
    public void Render_NoMatchingKeySet_NamesRowFieldsAndKeySets()
    {
        var f = FormatFile.Parse("""{"instruction,output": "%instruction% %output%", "instruction,input,output": "%instruction% %input% %output%"}""", "fmt.json");
        var e = Assert.Throws<DatasetException>(() => f.Render(Row("""{"instruction": "hi", "answer": "x"}""", 7), "data.json"));
        Assert.Equal(7, e.Row);
        Assert.Contains("data.json", e.Message);
        Assert.Contains("[instruction, answer]", e.Message);
        Assert.Contains("[instruction,output]", e.Message);
        Assert.Contains("[instruction,input,output]", e.Message);
    }

    [Theory]
    [InlineData("""["x"]""", "one JSON object")]
    [InlineData("""{"a,b": 3}""", "must be a string")]
    [InlineData("""{"a,,b": "%a%"}""", "empty field name")]
    [InlineData("""{"a,b": "%a%", "b,a": "%b%"}""", "same field set")]
    [InlineData("""{"a,b": "%a% %c%"}""", "%c%")]
    [InlineData("""{}""", "no templates")]
    [InlineData("""{"a": "x" """, "invalid JSON")]
    public void Parse_BadFormatFile_SaysWhatIsWrong(string json, string expected)
    {
        var e = Assert.Throws<DatasetException>(() => FormatFile.Parse(json, "bad-format.json"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("bad-format.json", e.Message);
    }

    [Fact]
    public void TrainingPrompt_ListsTemplatesLikeWebui()
    {
        var f = FormatFile.Parse("""{"a": "%a%!", "a,b": "%a%%b%"}""", "f");
        var p = f.TrainingPrompt();
        Assert.Equal("dataset", p["template_type"]);
        Assert.Equal("%a%!", p["template_1"]);
        Assert.Equal("%a%%b%", p["template_2"]);
    }
}
