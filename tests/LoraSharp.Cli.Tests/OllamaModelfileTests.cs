// Ollama Modelfiles (docs/getting-started.md): each supported family's Jinja chat template becomes the Go template and
// stop tokens of that family; other templates get none; merge --ollama / export --ollama write the file beside the output.
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LoraSharp.App.Ollama;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class OllamaModelfileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "lorasharp-ollama-" + Guid.NewGuid().ToString("N"));

    public OllamaModelfileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Abbreviated Jinja templates with each family's markers, as tokenizer_config.json / tokenizer.chat_template hold them.
    public static TheoryData<string, string, string, string[]> Families => new()
    {
        { "llama3", "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}",
          "<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>", ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"] },
        { "chatml", "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}",
          "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n", ["<|im_end|>", "<|im_start|>"] },
        { "mistral", "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
          "[INST] {{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]", ["[INST]", "[/INST]"] },
        { "gemma", "{% for message in messages %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}",
          "<start_of_turn>{{ if eq .Role \"assistant\" }}model{{ else }}{{ .Role }}{{ end }}\n{{ .Content }}<end_of_turn>\n", ["<end_of_turn>", "<start_of_turn>"] },
        { "phi3", "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}",
          "<|{{ .Role }}|>\n{{ .Content }}<|end|>\n", ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>"] },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void Render_KnownFamily_WritesItsGoTemplateAndStops(string family, string jinja, string turn, string[] stops)
    {
        string text = OllamaModelfile.Render("./my-model.gguf", null, jinja);
        var lines = text.Split('\n');
        Assert.Contains("FROM ./my-model.gguf", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("ADAPTER", StringComparison.Ordinal));
        Assert.Contains("# chat template: " + family, lines);
        var template = Regex.Match(text, "^TEMPLATE \"\"\"(.*?)\"\"\"$", RegexOptions.Singleline | RegexOptions.Multiline);
        Assert.True(template.Success, text);
        string go = template.Groups[1].Value;
        Assert.Contains(turn, go);
        Assert.Contains("{{ .System }}", go.Replace("$.System", ".System"));
        // Go text/template: balanced actions, one {{ end }} per if/range, no Jinja left over.
        Assert.Equal(Regex.Matches(go, @"\{\{").Count, Regex.Matches(go, @"\}\}").Count);
        Assert.Equal(Regex.Matches(go, @"\{\{-? (if|range) ").Count, Regex.Matches(go, @"\{\{-? end -?\}\}").Count);
        Assert.DoesNotContain("{%", go);
        Assert.Equal(stops.Select(s => $"PARAMETER stop \"{s}\""), lines.Where(l => l.StartsWith("PARAMETER stop", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("{% for m in messages %}[INST] <<SYS>>\n{{ m['content'] }}\n<</SYS>>[/INST]{% endfor %}")]   // Llama 2
    [InlineData("{% for m in messages %}### Instruction:\n{{ m['content'] }}\n### Response:{% endfor %}")]     // Alpaca
    public void Render_OtherTemplate_WritesNoTemplateAndSaysSo(string jinja)
    {
        string text = OllamaModelfile.Render("./m.gguf", null, jinja);
        Assert.DoesNotContain(text.Split('\n'), l => l.StartsWith("TEMPLATE", StringComparison.Ordinal) || l.StartsWith("PARAMETER", StringComparison.Ordinal));
        Assert.Contains("not one LoraSharp translates", text);
    }

    [Fact]
    public void Render_Phi3FixtureTemplate_IsPhi3()
    {
        string template = OllamaModelfile.ReadChatTemplate(SharedFixtures.Path("tokenizers", "hf-tokenizer-json", "phi3"))
            ?? throw new InvalidOperationException("the phi3 fixture's tokenizer_config.json has no chat_template");
        Assert.Same(OllamaModelfile.Phi3, OllamaModelfile.Detect(template));
    }

    [Fact]
    public void Merge_Ollama_WritesModelfileWithTheBaseChatTemplate()
    {
        // stories260K with a ChatML chat_template added to a copy of its tokenizer_config.json.
        string model = Path.Combine(_dir, "chat-base");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(SharedFixtures.Stories260KHf)) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = (string)Families.Single(r => (string)r[0] == "chatml")[1];
        File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), config.ToJsonString());

        Directory.CreateDirectory(Path.Combine(_dir, "out"));
        string outFile = Path.Combine(_dir, "out", "chat.gguf");
        var (code, _, err) = MergeCommandTests.Run("merge", "-m", model, "-a", MergeCommandTests.Lora, "-o", outFile, "--ollama");
        Assert.True(code == 0, err);
        string text = File.ReadAllText(Path.Combine(_dir, "out", "Modelfile"));
        Assert.Contains("FROM ./chat.gguf\n", text);
        Assert.Contains("# chat template: chatml", text);
        Assert.Contains("PARAMETER stop \"<|im_end|>\"", text);
    }

    [Fact]
    public void Merge_OllamaWithHfOutput_FailsBeforeWriting()
    {
        string outDir = Path.Combine(_dir, "hf-out");
        var (code, _, err) = MergeCommandTests.Run("merge", "-m", SharedFixtures.Stories260KHf, "-a", MergeCommandTests.Lora, "-o", outDir, "--ollama");
        Assert.Equal(1, code);
        Assert.Contains("--ollama", err);
        Assert.Contains(".gguf", err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Export_OllamaWithHfBase_FailsWithHowToFix()
    {
        string outFile = Path.Combine(_dir, "a.gguf");
        var (code, _, err) = MergeCommandTests.Run("export", "-a", MergeCommandTests.Lora, "-m", SharedFixtures.Stories260KHf, "-o", outFile, "--ollama");
        Assert.Equal(1, code);
        Assert.Contains("not a .gguf file", err);
        Assert.False(File.Exists(outFile));
    }
}
