// llama.cpp (LLamaSharp 0.30.0, CPU backend) as the independent client of what LoraSharp exports for stories260K: a
// LoRA trained here, exported as a GGUF LoRA and applied by llama.cpp to the F32 GGUF base, and merged to GGUF F32
// and Q8_0, gives the same greedy tokens as LoraSharp's own generation and the same logits at every position; a
// merged GGUF's chat template renders the same prompt in llama.cpp (llama_chat_apply_template) as in LoraSharp.
// Q8_0: the two do not multiply the same way. llama.cpp quantizes the activations to Q8_0 blocks for every product
// with a Q8_0 weight (its vec_dot_type); LoraSharp multiplies f32 activations by the dequantized Q8_0 weights (its
// integer Q8 path is Q4_0-only: for Q8_0 it was slower, StoredPanelSource.SupportsQ8Dot). Rounding the activations
// to 8 bits a block is an error of the same kind and size as rounding the weights, so the logits may differ by about
// the Q8_0 file's own error against F32 (measured: 0.29 apart at worst over 55 positions, 0.36 from F32, logits up
// to ~19). The test holds the gap to at most 1.5 times the Q8_0 error measured in the same run, and the tokens exact.
// F32 (merged, or base + GGUF LoRA): measured 1.0e-5 / 1.2e-5, tolerance 1e-4.
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;
using LoraSharp.Tokenizers.Chat;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Data;
using LoraSharp.Training.Peft;
using LoraSharp.Training.Tests.Adapters;

namespace LoraSharp.Training.Tests.Families;

public class LlamaCppClientTests
{
    private const int Steps = 40;

    private static string BaseGguf => AdapterFixtures.GgufF32;

    // Trained once per modules_to_save list for the whole class (xUnit runs a class's tests one at a time); the models
    // are only read afterwards. Each training takes a few seconds on the shared machine.
    private static readonly Dictionary<string, (LlamaModel Model, int[] Prompt)> s_trained = [];

    /// <summary>stories260K with a rank-4 all-linear LoRA trained 20 steps on a repeated story (the HF folder as base).</summary>
    private static LlamaModel Trained(out int[] prompt, params string[] modulesToSave)
    {
        string key = string.Join(",", modulesToSave);
        lock (s_trained)
        {
            if (!s_trained.TryGetValue(key, out var t)) s_trained[key] = t = (Train(modulesToSave, out var p), p);
            prompt = t.Prompt;
            return t.Model;
        }
    }

    private static LlamaModel Train(string[] modulesToSave, out int[] prompt)
    {
        var tok = Tokenizers.TokenizerLoader.FromFile(Path.Combine(AdapterFixtures.HfFolder, "tokenizer.json"));
        const string story = "Once upon a time there was a little cat. The cat liked to play in the sun. One day the cat saw a big dog. ";
        var ids = tok.EncodeToIds(string.Concat(Enumerable.Repeat(story, 8)), addSpecialTokens: false);
        var train = new List<TrainingSample>();
        for (int i = 0; i + 32 <= ids.Length; i += 16) train.Add(new TrainingSample([1, .. ids[i..(i + 32)]], [1, .. ids[i..(i + 32)]]));
        var model = AdapterFixtures.LoadModel();
        var lora = new LoraSettings { Rank = 4, Alpha = 8, TargetModules = ["all-linear"] };
        LoraInjector.Attach(model, lora, seed: 1);
        model.TrainModulesToSave(modulesToSave);
        var settings = new TrainingSettings
        {
            MicroBatchSize = 4, BatchSize = 4, CutoffLen = 64, MaxSteps = 20, LearningRate = 3e-3, WarmupSteps = 0,
            LoraRank = 4, LoraAlpha = 8, LoraDropout = 0, TargetModules = ["all-linear"], LrSchedulerType = "constant",
        };
        new Trainer(model, settings, train, null, padId: 0).Run();
        prompt = [1, .. tok.EncodeToIds("Once upon a time there was a big dog. It liked", addSpecialTokens: false)];
        return model;
    }

    /// <summary>LoraSharp's greedy decode fed one token at a time, and the logits after every token but the last.</summary>
    private static (int[] Ids, List<float[]> Logits) Ours(LlamaModel model, int[] prompt, int steps)
    {
        var cache = model.CreateCache(prompt.Length + steps);
        var ids = new List<int>(prompt);
        var logits = new List<float[]>();
        for (int i = 0; i < prompt.Length; i++) logits.Add(model.ForwardCached([prompt[i]], cache).ToArray());
        for (int s = 0; s < steps; s++)
        {
            int next = Models.Generation.Sampler.ArgMax(logits[^1]);
            ids.Add(next);
            if (s + 1 < steps) logits.Add(model.ForwardCached([next], cache).ToArray());
        }
        return ([.. ids], logits);
    }

    private static double WorstLogitDiff(List<float[]> ours, List<float[]> theirs)
    {
        Assert.Equal(ours.Count, theirs.Count);
        double worst = 0;
        for (int t = 0; t < ours.Count; t++) worst = Math.Max(worst, TestData.MaxAbsDiff(ours[t], theirs[t]));
        return worst;
    }

    private static LlamaModel Load(string path)
    {
        using var loaded = ModelLoader.Load(path);
        return LlamaModel.FromTensors(loaded.Config, loaded.Tensors, loaded.SourcePath);
    }

    [Fact]
    public void GgufLora_AppliedByLlamaCpp_GivesLoraSharpsGreedyTextAndLogits()
    {
        using var dir = new TempDir();
        var trained = Trained(out var prompt);
        string lora = dir["lora.gguf"];
        GgufLoraAdapter.Write(LoraWeights.FromModel(trained), trained.Config, lora);

        // LoraSharp: the same two files (F32 GGUF base + GGUF LoRA), read back through its GGUF LoRA import.
        using var ours = Load(BaseGguf);
        AdapterLoader.Attach(ours, lora);
        var (ids, logits) = Ours(ours, prompt, Steps);
        Assert.Equal(Ours(trained, prompt, Steps).Ids, ids);
        using (var plain = Load(BaseGguf))
            Assert.NotEqual(Ours(plain, prompt, Steps).Ids, ids);   // the adapter changes the text, so the check means something

        var (cppIds, cppLogits) = LlamaCppGreedy.Run(BaseGguf, prompt, Steps, lora);
        Assert.Equal(ids, cppIds);
        double worst = WorstLogitDiff(logits, cppLogits);
        Assert.True(worst <= 1e-4, $"llama.cpp with the GGUF LoRA: logits differ from LoraSharp's by up to {worst:E3} over {logits.Count} positions");
    }

    /// <summary>LoraSharp's logits after each of <paramref name="ids"/> but the last, fed one at a time.</summary>
    private static List<float[]> Forced(LlamaModel model, int[] ids)
    {
        var cache = model.CreateCache(ids.Length);
        return [.. ids[..^1].Select(t => model.ForwardCached([t], cache).ToArray())];
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("q8_0")]
    [InlineData("f32", "embed_tokens,lm_head")]   // modules_to_save: the merge unties the base; llama.cpp reads output.weight
    public void MergedGguf_LlamaCppGivesLoraSharpsGreedyTextAndLogits(string dtype, string modulesToSave = "")
    {
        using var dir = new TempDir();
        var trained = Trained(out var prompt, modulesToSave.Split(',', StringSplitOptions.RemoveEmptyEntries));
        string adapter = dir["adapter"];
        Directory.CreateDirectory(adapter);
        PeftAdapter.WriteFiles(trained, "default", PeftAdapter.ToConfig(new LoraSettings { Rank = 4, Alpha = 8, TargetModules = ["all-linear"] }, "stories260K",
            modulesToSave: trained.ModulesToSave), adapter);
        string merged = dir[$"merged-{dtype}.gguf"];
        AdapterMerger.Merge(AdapterFixtures.HfFolder, [(adapter, 1.0)], merged, new MergeOptions { Format = "gguf", DType = dtype });

        using var ours = Load(merged);
        var (ids, logits) = Ours(ours, prompt, Steps);
        if (dtype == "f32") Assert.Equal(Ours(trained, prompt, Steps).Ids, ids);   // the merge is the trained model
        var (cppIds, cppLogits) = LlamaCppGreedy.Run(merged, prompt, Steps);
        Assert.Equal(ids, cppIds);
        double worst = WorstLogitDiff(logits, cppLogits);
        double tolerance = 1e-4;
        if (dtype == "q8_0")
        {
            // The Q8_0 file's own error: the same tokens through the F32 merge (see the header).
            string f32 = dir["merged-f32.gguf"];
            AdapterMerger.Merge(AdapterFixtures.HfFolder, [(adapter, 1.0)], f32, new MergeOptions { Format = "gguf", DType = "f32" });
            using var exact = Load(f32);
            double quantError = WorstLogitDiff(logits, Forced(exact, ids));
            Assert.True(quantError > 1e-3, $"the Q8_0 merge is {quantError:E3} from F32: it is not quantized");
            tolerance = 1.5 * quantError;
        }
        Assert.True(worst <= tolerance, $"merged {dtype}: llama.cpp's logits differ from LoraSharp's by up to {worst:E3} over {logits.Count} positions (tolerance {tolerance:E1})");
    }

    [Fact]
    public void MergedGguf_ChatTemplate_RendersTheSamePromptInLlamaCpp()
    {
        using var dir = new TempDir();
        // stories260K ships no chat template: give the base the usual ChatML one (Qwen's, without tools).
        string hf = dir["base"];
        Directory.CreateDirectory(hf);
        foreach (var f in Directory.GetFiles(AdapterFixtures.HfFolder)) File.Copy(f, Path.Combine(hf, Path.GetFileName(f)));
        string configPath = Path.Combine(hf, "tokenizer_config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["chat_template"] = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
                                  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        File.WriteAllText(configPath, config.ToJsonString());
        string merged = dir["merged.gguf"];
        AdapterMerger.Merge(hf, [(AdapterFixtures.LoraFolder, 1.0)], merged, new MergeOptions { Format = "gguf", DType = "f32" });

        (string Role, string Content)[] messages = [("system", "You tell short stories."), ("user", "Tell me about a cat."), ("assistant", "The cat sat in the sun."), ("user", "And then?")];
        using var loaded = ModelLoader.Load(merged);
        var template = ModelChatTemplates.For(loaded, GgufTokenizer.ForModel(loaded));
        Assert.NotNull(template);
        string ours = template.Parse().Render(messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList(), addGenerationPrompt: true);
        string cpp = LlamaCppGreedy.ApplyChatTemplate(merged, messages);
        Assert.Equal(ours, cpp);
        Assert.EndsWith("<|im_start|>assistant\n", cpp);
    }
}
