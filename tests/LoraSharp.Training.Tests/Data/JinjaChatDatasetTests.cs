// Chat datasets rendered with a model's own Jinja chat template: the template is found in tokenizer_config.json
// (or given as chat_template), rows keep their tool calls and tools, ShareGPT rows equal the same messages, only the
// assistant spans are trained unless train_on_inputs, and a template's raise_exception names the row.
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Tokenizers.Chat;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public sealed class JinjaChatDatasetTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-jinja-" + Guid.NewGuid().ToString("N"));

    public JinjaChatDatasetTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Template(string name) =>
        File.ReadAllText(Path.Combine(DataTestKit.RepoRoot(), "tests", "LoraSharp.Tokenizers.Tests", "Data", "chat-templates", name + ".jinja"));

    private static ModelChatTemplate Model(string name) => new(Template(name), "test " + name, null, "<|im_end|>");

    private const string Messages = """
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Question one?"}, {"role": "assistant", "content": "Reply one."}, {"role": "user", "content": "Question two?"}, {"role": "assistant", "content": "Reply two."}]}
        """;

    private const string ShareGpt = """
        {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Question one?"}, {"from": "gpt", "value": "Reply one."}, {"from": "human", "value": "Question two?"}, {"from": "gpt", "value": "Reply two."}]}
        """;

    private const string ToolRow = """
        {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}], "messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "18 C"}, {"role": "assistant", "content": "It is 18 C."}]}
        """;

    private PreparedData Prepare(string jsonl, ModelChatTemplate? model, string? chatTemplate = null, bool trainOnInputs = false)
    {
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".jsonl");
        File.WriteAllText(path, jsonl);
        return TrainingData.Prepare(new DataSpec
        {
            DatasetPath = path, Kind = DatasetKind.Chat, ModelChatTemplate = model, ChatTemplate = chatTemplate, TrainOnInputs = trainOnInputs, CutoffLength = 1024,
        }, DataTestKit.Tok);
    }

    [Fact]
    public void ModelTemplate_IsTheDefault_AndTrainsOnlyTheReplies()
    {
        var data = Prepare(Messages, Model("qwen2.5"));
        Assert.StartsWith("model:", data.Template["chat_template"]);
        var s = data.Train.Single();
        Assert.Equal("Reply one.<|im_end|>Reply two.<|im_end|>", DataTestKit.TrainedText(s));
        Assert.Contains("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nQuestion one?", DataTestKit.Tok.Decode(s.InputIds));
    }

    [Fact]
    public void ShareGpt_EqualsTheSameMessages()
    {
        var a = Prepare(Messages, Model("qwen3")).Train.Single();
        var b = Prepare(ShareGpt, Model("qwen3")).Train.Single();
        Assert.Equal(a.InputIds, b.InputIds);
        Assert.Equal(a.Labels, b.Labels);
        Assert.Equal("Reply one.<|im_end|><think>\n\n</think>\n\nReply two.<|im_end|>", DataTestKit.TrainedText(a));
    }

    [Fact]
    public void ToolCallsAndTools_ReachTheTemplate_ToolResultsAreNotTrained()
    {
        var s = Prepare(ToolRow, Model("qwen2.5")).Train.Single();
        string all = DataTestKit.Tok.Decode(s.InputIds);
        Assert.Contains("\"name\": \"get_weather\"", all);
        Assert.Contains("<tool_response>\n18 C\n</tool_response>", all);
        string trained = DataTestKit.TrainedText(s);
        Assert.Equal("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>It is 18 C.<|im_end|>", trained);
    }

    [Fact]
    public void TrainOnInputs_TrainsEveryToken()
    {
        var s = Prepare(Messages, Model("qwen2.5"), trainOnInputs: true).Train.Single();
        Assert.Equal(s.Length, DataTestKit.Trained(s));
    }

    [Fact]
    public void ChatTemplateSetting_NameFileOrInline_OverridesTheModel()
    {
        Assert.Equal("chatml", Prepare(Messages, Model("qwen2.5"), "chatml").Template["chat_template"]);
        Assert.Equal("llama3", Prepare(Messages, Model("qwen2.5"), "llama3").Template["chat_template"]);
        string file = Path.Combine(_dir, "gemma.jinja");
        File.WriteAllText(file, Template("gemma-3"));
        var g = Prepare(Messages, Model("qwen2.5"), file).Train.Single();
        Assert.Equal("Reply one.<end_of_turn>Reply two.<end_of_turn>", DataTestKit.TrainedText(g));
        var inline = Prepare(Messages, null, "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}").Train.Single();
        Assert.Equal("Reply one.Reply two.", DataTestKit.TrainedText(inline));
        Assert.Equal("chatml", Prepare(Messages, null).Template["chat_template"]);
        var ex = Assert.Throws<DatasetException>(() => Prepare(Messages, null, "no-such-template"));
        Assert.Contains("chatml", ex.Message);
    }

    [Fact]
    public void RaiseException_InTheTemplate_NamesTheRow()
    {
        const string twoUsers = """
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]}
            """;
        var ex = Assert.Throws<DatasetException>(() => Prepare(twoUsers, Model("gemma-3")));
        Assert.Contains("Conversation roles must alternate", ex.Message);
        Assert.Contains("2", ex.Message);
    }

    [Fact]
    public void BrokenModelTemplate_SaysWhereAndHowToAvoidIt()
    {
        var ex = Assert.Throws<Tokenizers.TokenizerFormatException>(() => Prepare(Messages, new ModelChatTemplate("{% if x %}never closed", "tokenizer_config.json chat_template", null, null)));
        Assert.Contains("tokenizer_config.json chat_template", ex.Message);
        Assert.Contains("line 1", ex.Message);
        Assert.Contains("chat_template", ex.Message);
    }

    [Theory]
    [InlineData("string")]
    [InlineData("list")]
    [InlineData("file")]
    public void TokenizerConfig_AllThreeWaysOfShippingATemplate(string how)
    {
        string tpl = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
        string json = how switch
        {
            "string" => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["chat_template"] = tpl, ["bos_token"] = new Dictionary<string, object> { ["content"] = "<s>" } }),
            "list" => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["chat_template"] = new[] { new { name = "tool_use", template = "x" }, new { name = "default", template = tpl } }, ["bos_token"] = "<s>" }),
            _ => """{"bos_token": "<s>"}""",
        };
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), json);
        if (how == "file") File.WriteAllText(Path.Combine(_dir, "chat_template.jinja"), tpl);
        var found = ModelChatTemplate.FromTokenizerConfig(Path.Combine(_dir, "tokenizer_config.json"));
        Assert.NotNull(found);
        Assert.Equal(tpl, found.Source);
        Assert.Equal("<s>ab", found.Parse().Render([new ChatMessage("user", "a"), new ChatMessage("assistant", "b")]));
    }

    [Fact]
    public void HfFolderTemplate_IsFound_AndTravelsIntoAMergedGguf()
    {
        foreach (var f in Directory.GetFiles(SharedFixtures.Stories260KHf)) File.Copy(f, Path.Combine(_dir, Path.GetFileName(f)));
        string cfgPath = Path.Combine(_dir, "tokenizer_config.json");
        var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["chat_template"] = Template("llama-3.2");
        File.WriteAllText(cfgPath, cfg.ToJsonString());

        using var loaded = ModelLoader.Load(_dir);
        var tok = GgufTokenizer.ForModel(loaded);
        var own = ModelChatTemplates.For(loaded, tok);
        Assert.NotNull(own);
        Assert.Equal(Template("llama-3.2"), own.Source);

        var meta = HfTokenizerToGguf.Metadata(Path.Combine(_dir, "tokenizer.json"), cfgPath, loaded.Config);
        Assert.Equal(Template("llama-3.2"), meta.Single(kv => kv.Key == "tokenizer.chat_template").Value.AsString());

        // merge to GGUF, load the GGUF: the template and the vocabulary's BOS/EOS texts come back
        string gguf = Path.Combine(_dir, "merged.gguf");
        AdapterMerger.Merge(_dir, [(Tests.Adapters.AdapterFixtures.LoraFolder, 1.0)], gguf, new MergeOptions { Format = "gguf" });
        using var fromGguf = ModelLoader.Load(gguf);
        var ggufTok = GgufTokenizer.ForModel(fromGguf);
        var again = ModelChatTemplates.For(fromGguf, ggufTok);
        Assert.NotNull(again);
        Assert.Equal(Template("llama-3.2"), again.Source);
        Assert.Equal(ggufTok.IdToToken(ggufTok.BosTokenId), again.BosToken);
        Assert.StartsWith(again.BosToken + "<|start_header_id|>system", again.Parse().Render([new ChatMessage("user", "hi")]));
    }
}
