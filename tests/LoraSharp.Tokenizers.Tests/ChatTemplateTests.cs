// Chat templates: the exact text of each family, detection from real tokenizer_config.json templates, and assistant
// spans that map to exactly the assistant tokens.
using LoraSharp.TestSupport;
using LoraSharp.Tokenizers.Chat;

namespace LoraSharp.Tokenizers.Tests;

public class ChatTemplateTests
{
    private static readonly ChatMessage[] s_chat =
    [
        new("system", "Be brief."),
        new("user", "Hi there"),
        new("assistant", "Hello!"),
        new("user", "How are you?"),
        new("assistant", "Fine, thanks."),
    ];

    [Theory]
    [InlineData("chatml", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\nFine, thanks.<|im_end|>\n")]
    [InlineData("llama2", "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s><s>[INST] How are you? [/INST] Fine, thanks. </s>")]
    [InlineData("llama3", "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nFine, thanks.<|eot_id|>")]
    [InlineData("mistral", "<s>[INST] Be brief.\n\nHi there [/INST]Hello!</s>[INST] How are you? [/INST]Fine, thanks.</s>")]
    [InlineData("alpaca", "Be brief.\n\n### Instruction:\nHi there\n\n### Response:\nHello!</s>\n\n### Instruction:\nHow are you?\n\n### Response:\nFine, thanks.</s>\n\n")]
    [InlineData("zephyr", "<|system|>\nBe brief.</s>\n<|user|>\nHi there</s>\n<|assistant|>\nHello!</s>\n<|user|>\nHow are you?</s>\n<|assistant|>\nFine, thanks.</s>\n")]
    [InlineData("phi3", "<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\nFine, thanks.<|end|>\n")]
    public void Render_KnownFamily_GivesExactTextAndAssistantSpans(string name, string expected)
    {
        var chat = ChatTemplate.FromName(name).Render(s_chat);
        Assert.Equal(expected, chat.Text);
        Assert.Equal(2, chat.AssistantSpans.Count);
        string first = chat.Text[chat.AssistantSpans[0].Start..chat.AssistantSpans[0].End];
        string second = chat.Text[chat.AssistantSpans[1].Start..chat.AssistantSpans[1].End];
        Assert.Contains("Hello!", first);
        Assert.Contains("Fine, thanks.", second);
        Assert.DoesNotContain("How are you", first + second);
    }

    [Theory]
    [InlineData("chatml", "<|im_start|>assistant\n")]
    [InlineData("llama3", "<|start_header_id|>assistant<|end_header_id|>\n\n")]
    [InlineData("alpaca", "### Response:\n")]
    [InlineData("zephyr", "<|assistant|>\n")]
    [InlineData("phi3", "<|assistant|>\n")]
    public void Render_AddGenerationPrompt_EndsWithAssistantHeader(string name, string header)
    {
        var msgs = new[] { new ChatMessage("user", "Hi") };
        Assert.EndsWith(header, ChatTemplate.FromName(name).Render(msgs, addGenerationPrompt: true).Text);
        Assert.False(ChatTemplate.FromName(name).Render(msgs, addGenerationPrompt: false).Text.EndsWith(header, StringComparison.Ordinal));
    }

    [Fact]
    public void Detect_RealTokenizerConfigs_FindTheFamily()
    {
        Assert.Equal("llama2", ChatTemplate.DetectFromTokenizerConfig(SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "llama-tiny-random", "tokenizer_config.json"))!.Name);
        Assert.Equal("phi3", ChatTemplate.DetectFromTokenizerConfig(SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "phi3", "tokenizer_config.json"))!.Name);
        Assert.Null(ChatTemplate.DetectFromTokenizerConfig(Path.Combine(SharedFixtures.Stories260KHf, "tokenizer_config.json")));
        Assert.Equal("chatml", ChatTemplate.Detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}")!.Name);
        Assert.Equal("llama3", ChatTemplate.Detect("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}")!.Name);
        Assert.Equal("mistral", ChatTemplate.Detect("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}")!.Name);
        Assert.Equal("alpaca", ChatTemplate.Detect("{{ '### Instruction:\n' + message['content'] }}{{ '### Response:\n' }}")!.Name);
        Assert.Equal("zephyr", ChatTemplate.Detect("{{ '<|user|>\n' + message['content'] + eos_token }}{{ '<|assistant|>' }}")!.Name);
        Assert.Null(ChatTemplate.Detect("{{ message['content'] }}"));
        Assert.Throws<TokenizerFormatException>(() => ChatTemplate.FromName("vicuna"));
    }

    [Theory]
    [InlineData("llama2", "stories-json")]
    [InlineData("chatml", "stories-json")]
    [InlineData("phi3", "phi3-json")]
    [InlineData("mistral", "llama-json")]
    [InlineData("alpaca", "gpt2-files")]
    public void Encode_AssistantMask_CoversExactlyTheAssistantTokens(string template, string tokenizer)
    {
        var tok = Fixtures.ByName(tokenizer);
        var t = ChatTemplate.FromName(template);
        var enc = t.Encode(tok, s_chat);
        Assert.Equal(enc.Ids.Length, enc.AssistantMask.Length);
        Assert.Equal(2, enc.AssistantTokenSpans.Count);
        // The masked tokens decode to the assistant replies (and their end markers), the rest to everything else.
        string masked = string.Concat(enc.AssistantTokenSpans.Select(s => tok.Decode(enc.Ids[s.Start..s.End])));
        Assert.Contains("Hello!", masked);
        Assert.Contains("Fine, thanks.", masked);
        Assert.DoesNotContain("Hi there", masked);
        Assert.DoesNotContain("How are you", masked);
        Assert.Equal(enc.AssistantTokenSpans.Sum(s => s.Length), enc.AssistantMask.Count(m => m));
        // The reply's end marker is inside the mask (the model must learn to stop).
        int last = enc.AssistantTokenSpans[1].End - 1;
        string end = tok.IdToToken(enc.Ids[last])!;
        Assert.True(tok.IsSpecial(enc.Ids[last]) || end.Contains('s') || end.Contains('>'), $"last assistant token '{end}'");
        // Templates that write BOS themselves do not get a second one.
        if (t.WritesBos && tok.BosTokenId >= 0) Assert.NotEqual(tok.BosTokenId, enc.Ids[1]);
    }
}
