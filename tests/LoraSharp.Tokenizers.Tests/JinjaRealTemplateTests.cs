// The real chat templates of Llama 3.1/3.2, Qwen2.5, Qwen3, Gemma 3, Phi-4-mini, Mistral Nemo and SmolLM3
// (Data/chat-templates/*.jinja) rendered with every case of cases.json must give exactly what Python's jinja2 gave
// in transformers' environment (expected.json, written by generate_expected.py): the same text, the same
// raise_exception message, and for SmolLM3 the same {% generation %} spans.
using System.Text.Json;
using LoraSharp.Tokenizers.Chat;
using LoraSharp.Tokenizers.Chat.Jinja;

namespace LoraSharp.Tokenizers.Tests;

public class JinjaRealTemplateTests
{
    internal static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Data", "chat-templates");
    internal static readonly DateTime Now = new(2026, 1, 15, 9, 30, 0);

    private static readonly Lazy<JsonDocument> s_cases = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "cases.json"))));
    private static readonly Lazy<JsonDocument> s_expected = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json"))));

    public static TheoryData<string, string> All()
    {
        var d = new TheoryData<string, string>();
        using var cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "cases.json")));
        foreach (var t in cases.RootElement.GetProperty("templates").EnumerateObject())
            foreach (var c in cases.RootElement.GetProperty("cases").EnumerateArray())
                d.Add(t.Name, c.GetProperty("name").GetString()!);
        return d;
    }

    internal static JinjaChatTemplate Load(string template)
    {
        var tokens = s_cases.Value.RootElement.GetProperty("templates").GetProperty(template);
        string? Tok(string n) => tokens.GetProperty(n).ValueKind == JsonValueKind.Null ? null : tokens.GetProperty(n).GetString();
        return new JinjaChatTemplate(File.ReadAllText(Path.Combine(Dir, template + ".jinja")), Tok("bos_token"), Tok("eos_token"), new JinjaRenderOptions { Now = Now });
    }

    internal static (List<object?> Messages, object? Tools, Dictionary<string, object?> Extra, bool Gen) Case(string name)
    {
        var c = s_cases.Value.RootElement.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        var messages = c.GetProperty("messages").EnumerateArray().Select(m => (object?)m).ToList();
        object? tools = c.TryGetProperty("tools", out var t) ? t : null;
        var extra = new Dictionary<string, object?>();
        if (c.TryGetProperty("kwargs", out var kw)) foreach (var p in kw.EnumerateObject()) extra[p.Name] = p.Value;
        return (messages, tools, extra, c.GetProperty("add_generation_prompt").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Render_RealTemplate_MatchesPythonJinja2(string template, string caseName)
    {
        var tpl = Load(template);
        var (messages, tools, extra, gen) = Case(caseName);
        var expected = s_expected.Value.RootElement.GetProperty(template).GetProperty(caseName);
        if (expected.TryGetProperty("error", out var err))
        {
            var ex = Assert.Throws<JinjaException>(() => tpl.Render(messages, gen, tools, extra));
            Assert.True(ex.IsRaised, ex.Message);
            Assert.Equal(err.GetString(), ex.Message);
            return;
        }
        Assert.Equal(expected.GetProperty("text").GetString(), tpl.Render(messages, gen, tools, extra));
    }

    [Theory]
    [InlineData("multi_turn_system")]
    [InlineData("no_system")]
    [InlineData("thinking")]
    [InlineData("no_thinking_reply")]
    [InlineData("tools")]
    [InlineData("whitespace_unicode")]
    public void SmolLM3_GenerationBlocks_GiveTheSpansPythonRecorded(string caseName)
    {
        var tpl = Load("smollm3");
        Assert.True(tpl.Template.HasGenerationBlocks);
        var (messages, tools, extra, _) = Case(caseName);
        var expected = s_expected.Value.RootElement.GetProperty("smollm3").GetProperty(caseName);
        var chat = tpl.RenderForTraining(messages, tools, extra);
        Assert.Equal(expected.GetProperty("text").GetString(), chat.Text);
        var want = expected.GetProperty("generation_spans").EnumerateArray().Select(s => new TextSpan(s[0].GetInt32(), s[1].GetInt32())).ToList();
        Assert.Equal(want, chat.AssistantSpans);
    }
}
