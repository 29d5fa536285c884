// Assistant-only loss on real templates without {% generation %} blocks: the trained spans are what the model writes
// after the template's generation prompt, up to and including its end-of-turn marker. The expected spans are
// written by hand from each model card's documented turn format (not computed by the code under test).
using LoraSharp.Tokenizers.Chat;
using LoraSharp.Tokenizers.Chat.Jinja;

namespace LoraSharp.Tokenizers.Tests;

public class JinjaAssistantSpanTests
{
    [Theory]
    [InlineData("llama-3.1", "multi_turn_system", "Fine, thanks.<|eot_id|>", "4<|eot_id|>")]
    [InlineData("llama-3.2", "multi_turn_system", "Fine, thanks.<|eot_id|>", "4<|eot_id|>")]
    [InlineData("llama-3.2", "whitespace_unicode", "Ça va ? 日本語<|eot_id|>")]
    [InlineData("llama-3.2", "tools", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>", "It is 18 C and sunny in Paris.<|eot_id|>")]
    [InlineData("qwen2.5", "multi_turn_system", "Fine, thanks.<|im_end|>", "4<|im_end|>")]
    [InlineData("qwen2.5", "whitespace_unicode", "\n Ça va ? 日本語\t <|im_end|>")]
    [InlineData("qwen2.5", "tools", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>", "It is 18 C and sunny in Paris.<|im_end|>")]
    [InlineData("qwen3", "multi_turn_system", "Fine, thanks.<|im_end|>", "<think>\n\n</think>\n\n4<|im_end|>")]
    [InlineData("qwen3", "thinking", "9<|im_end|>", "<think>\nFour fours.\n</think>\n\n16<|im_end|>")]
    [InlineData("qwen3", "tools", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>", "<think>\n\n</think>\n\nIt is 18 C and sunny in Paris.<|im_end|>")]
    [InlineData("gemma-3", "multi_turn_system", "Fine, thanks.<end_of_turn>", "4<end_of_turn>")]
    [InlineData("gemma-3", "whitespace_unicode", "Ça va ? 日本語<end_of_turn>")]
    [InlineData("phi-4-mini", "multi_turn_system", "Fine, thanks.<|end|>", "4<|end|>")]
    [InlineData("mistral-nemo", "multi_turn_system", "Fine, thanks.</s>", "4</s>")]
    [InlineData("mistral-nemo", "no_system", "Blue.</s>")]
    [InlineData("mistral-nemo", "tools", "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abc123xyz\"}]</s>", "It is 18 C and sunny in Paris.</s>")]
    public void RenderForTraining_RealTemplate_SpansAreTheRepliesWithTheirEndMarker(string template, string caseName, params string[] expected)
    {
        var tpl = JinjaRealTemplateTests.Load(template);
        Assert.False(tpl.Template.HasGenerationBlocks);
        var (messages, tools, extra, _) = JinjaRealTemplateTests.Case(caseName);
        var chat = tpl.RenderForTraining(messages, tools, extra);
        Assert.Equal(tpl.Render(messages, false, tools, extra), chat.Text);
        Assert.Equal(expected, chat.AssistantSpans.Select(s => chat.Text[s.Start..s.End]).ToArray());
    }

    [Fact]
    public void RenderForTraining_SameReplyTwice_BothTurnsAreFoundWhereTheyAre()
    {
        var tpl = JinjaRealTemplateTests.Load("qwen2.5");
        var msgs = new List<ChatMessage> { new("user", "a"), new("assistant", "ok"), new("user", "ok"), new("assistant", "ok") };
        var chat = tpl.RenderForTraining(msgs);
        Assert.Equal(2, chat.AssistantSpans.Count);
        // The user's "ok" between them is not trained.
        int userOk = chat.Text.IndexOf("user\nok", StringComparison.Ordinal) + 5;
        Assert.DoesNotContain(chat.AssistantSpans, s => s.Start <= userOk && userOk < s.End);
        Assert.All(chat.AssistantSpans, s => Assert.Equal("ok<|im_end|>", chat.Text[s.Start..s.End]));
    }

    [Fact]
    public void RenderForTraining_TemplateWithoutMessageLoop_FallsBackToTheContent()
    {
        // Loops over indexes, not message objects: only the content characters can be attributed.
        var tpl = new JinjaChatTemplate("{% for i in range(messages|length) %}<{{ messages[i].role }}>{{ messages[i].content }}</s>{% endfor %}", null, "</s>");
        var chat = tpl.RenderForTraining([new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo")]);
        Assert.Equal("<user>hi</s><assistant>yo</s>", chat.Text);
        Assert.Equal(["yo"], chat.AssistantSpans.Select(s => chat.Text[s.Start..s.End]));
    }

    [Fact]
    public void EncodeForTraining_Stories_MaskCoversOnlyAssistantTokens()
    {
        var tpl = new JinjaChatTemplate("{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}", "<s>", "</s>");
        var messages = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "Once upon a time" },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "there was a cat" },
        };
        var enc = tpl.EncodeForTraining(Fixtures.Stories, messages);
        Assert.Equal(Fixtures.Stories.BosTokenId, enc.Ids[0]);
        Assert.Equal(1, enc.Ids.Count(id => id == Fixtures.Stories.BosTokenId));
        var trained = enc.Ids.Where((_, i) => enc.AssistantMask[i]).ToArray();
        Assert.Equal(Fixtures.Stories.EosTokenId, trained[^1]);
        Assert.Equal("there was a cat", Fixtures.Stories.Decode(trained[..^1]).Trim());
    }
}
