// modules_to_save end to end on stories260K (tied embeddings): training moves only LoRA and the saved matrices,
// the PEFT folder holds them under PEFT's keys and loads back to the trained model's logits, merging (HF folder and
// GGUF) equals applying the adapter and unties the base, and what cannot hold them (GGUF LoRA, combine, a scale)
// says so.
using LoraSharp.Formats.Peft;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Data;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training.Tests.Adapters;

public class ModulesToSaveTests
{
    private static List<TrainingSample> Samples()
    {
        var rng = new Random(5);
        return Enumerable.Range(0, 8).Select(_ =>
        {
            int[] ids = [1, .. Enumerable.Range(0, 23).Select(_ => rng.Next(3, 512))];
            return new TrainingSample(ids, ids);
        }).ToList();
    }

    private static TrainingSettings Settings(params string[] modules) => new()
    {
        MicroBatchSize = 4, BatchSize = 4, MaxSteps = 3, LearningRate = 1e-2, WarmupSteps = 0, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0,
        TargetModules = ["q_proj", "v_proj"], CutoffLen = 32, LrSchedulerType = "constant", ModulesToSave = modules,
    };

    /// <summary>stories260K with LoRA on q/v and <paramref name="modules"/> trained 3 steps, saved as a PEFT folder.</summary>
    private static LlamaModel TrainAndSave(string folder, params string[] modules)
    {
        var model = AdapterFixtures.LoadModel();
        var s = Settings(modules);
        var lora = s.ToLoraSettings();
        LoraInjector.Attach(model, lora, s.Seed);
        model.TrainModulesToSave(s.ModulesToSave);
        new Trainer(model, s, Samples(), null, 0).Run();
        Directory.CreateDirectory(folder);
        PeftAdapter.WriteFiles(model, "default", PeftAdapter.ToConfig(lora, "stories260K", modulesToSave: model.ModulesToSave), folder);
        return model;
    }

    [Fact]
    public void Training_ChangesOnlyLoraAndTheSavedMatrices_AndTheFolderLoadsBackExactly()
    {
        using var dir = new TempDir();
        using var fresh = AdapterFixtures.LoadModel();
        var baseEmbedding = fresh.EmbeddingF32();
        using var model = TrainAndSave(dir["adapter"], "embed_tokens", "lm_head");

        // Both copies moved, apart from each other (untied), and LoRA learned.
        var embedding = model.Embedding!.Floats.ToArray();
        var head = model.OutputWeightF32!.Floats.ToArray();
        Assert.True(TestData.MaxAbsDiff(embedding, baseEmbedding) > 1e-3, "embed_tokens did not train");
        Assert.True(TestData.MaxAbsDiff(head, baseEmbedding) > 1e-3, "lm_head did not train");
        Assert.True(TestData.MaxAbsDiff(embedding, head) > 1e-3, "embed_tokens and lm_head stayed tied");
        Assert.Contains(LoraInjector.Enumerate(model, "default"), x => x.Adapter.B.Floats.ToArray().Any(v => v != 0));
        // Norms never train.
        Assert.Equal(fresh.FinalNorm.Floats.ToArray(), model.FinalNorm.Floats.ToArray());
        for (int l = 0; l < model.Layers.Length; l++)
            Assert.Equal(fresh.Layers[l].InputNorm.Floats.ToArray(), model.Layers[l].InputNorm.Floats.ToArray());

        // PEFT's keys: the wrapper's modules_to_save.<adapter> removed, LoRA keys beside them.
        using (var st = SafetensorsFile.Open(Path.Combine(dir["adapter"], PeftAdapter.WeightsFile)))
        {
            var names = st.Tensors.Select(t => t.Name).ToHashSet();
            Assert.Contains("base_model.model.model.embed_tokens.weight", names);
            Assert.Contains("base_model.model.lm_head.weight", names);
            Assert.Equal(2 + 2 * 2 * model.Layers.Length, names.Count);
            Assert.Equal([512, 64], st.Info("base_model.model.lm_head.weight").Shape);
        }
        Assert.Equal(["embed_tokens", "lm_head"], PeftAdapterConfig.Read(Path.Combine(dir["adapter"], PeftAdapterConfig.FileName)).ModulesToSave);

        // A fresh base plus the folder gives the trained model: the base weights never changed.
        var batch = AdapterFixtures.GoldenBatch();
        var trained = model.Logits(batch);
        var w = LoraWeights.ReadPeft(dir["adapter"]);
        Assert.Equal(["embed_tokens", "lm_head"], w.SavedModules.Select(m => m.Module));
        w.AttachTo(fresh);
        Assert.Equal(trained, fresh.Logits(batch));
        fresh.DetachAdapter("default");
        using var again = AdapterFixtures.LoadModel();
        Assert.Equal(again.Logits(batch), fresh.Logits(batch));   // detaching restores the base

        // Written again through LoraWeights (export/convert paths): same keys, same values.
        w.SavePeft(dir["copy"]);
        var w2 = LoraWeights.ReadPeft(dir["copy"]);
        Assert.Equal(w.SavedModules.Select(m => m.Values), w2.SavedModules.Select(m => m.Values));
    }

    [Fact]
    public void Resume_FromACheckpoint_RepeatsTheUninterruptedRun()
    {
        using var dir = new TempDir();
        var s = Settings("embed_tokens", "lm_head") with { MaxSteps = 4 };
        var batch = AdapterFixtures.GoldenBatch();
        LlamaModel Fresh()
        {
            var m = AdapterFixtures.LoadModel();
            LoraInjector.Attach(m, s.ToLoraSettings(), s.Seed);
            m.TrainModulesToSave(s.ModulesToSave);
            return m;
        }
        using var straight = Fresh();
        new Trainer(straight, s, Samples(), null, 0).Run();

        // Stopped after 2 steps, checkpointed (parameters and AdamW moments of the saved matrices too), resumed.
        using (var first = Fresh())
        {
            var trainer = new Trainer(first, s, Samples(), null, 0);
            using var cancel = new CancellationTokenSource();
            trainer.StepCompleted += r => { if (r.Step == 2) cancel.Cancel(); };
            trainer.Run(cancel.Token);
            Assert.Equal(2, trainer.Step);
            Checkpoint.Save(dir["cp"], trainer, first, PeftAdapter.ToConfig(s.ToLoraSettings(), "stories260K", modulesToSave: first.ModulesToSave));
        }
        using var resumed = Fresh();
        var again = new Trainer(resumed, s, Samples(), null, 0);
        Checkpoint.Restore(dir["cp"], again, resumed);
        again.Run();
        Assert.Equal(straight.Logits(batch), resumed.Logits(batch));
        Assert.Equal(straight.OutputWeightF32!.Floats.ToArray(), resumed.OutputWeightF32!.Floats.ToArray());
    }

    [Theory]
    [InlineData("hf", "lm_head")]
    [InlineData("gguf", "embed_tokens")]
    [InlineData("hf", "embed_tokens,lm_head")]
    public void Merge_EqualsApplyingTheAdapter_AndUntiesTheBase(string format, string modules)
    {
        using var dir = new TempDir();
        using var model = TrainAndSave(dir["adapter"], modules.Split(','));
        var batch = AdapterFixtures.GoldenBatch();
        var expected = model.Logits(batch);
        string output = format == "gguf" ? dir["merged.gguf"] : dir["merged"];
        var report = AdapterMerger.Merge(AdapterFixtures.HfFolder, [(dir["adapter"], 1.0)], output, new MergeOptions { Format = format, DType = "f32" });
        Assert.Equal(2 * model.Layers.Length + modules.Split(',').Length, report.MergedWeights);
        using var merged = AdapterFixtures.LoadModel(output);
        Assert.False(merged.TiedOutput);
        // (W + sBA)x against Wx + sB(Ax): float rounding only (1.1e-5 seen for gguf); the replaced matrices are exact.
        Assert.Equal(0.0, TestData.MaxAbsDiff(expected, merged.Logits(batch)), 1e-4);
        if (format == "hf")
        {
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
            Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
        }
    }

    [Fact]
    public void GgufLoraExport_Combine_AndScales_AreRefusedWithTheWayOut()
    {
        using var dir = new TempDir();
        using (TrainAndSave(dir["adapter"], "lm_head")) { }
        var w = LoraWeights.ReadPeft(dir["adapter"]);
        var e = Assert.Throws<Core.UserErrorException>(() => GgufLoraAdapter.Write(w, AdapterFixtures.Config(), dir["a.gguf"]));
        Assert.Contains("modules_to_save", e.Message);
        Assert.Contains("lorasharp merge --format gguf", e.Message);
        Assert.False(File.Exists(dir["a.gguf"]));

        e = Assert.Throws<Core.UserErrorException>(() => AdapterCombiner.Combine([(w, 0.5), (AdapterFixtures.RandomAdapter(1, 4, 1.0), 0.5)], CombineMethod.Linear));
        Assert.Contains("modules_to_save", e.Message);

        e = Assert.Throws<Core.UserErrorException>(() => AdapterMerger.Merge(AdapterFixtures.HfFolder, [(dir["adapter"], 0.5)], dir["m"], new MergeOptions()));
        Assert.Contains("cannot be scaled", e.Message);
        Assert.False(Directory.Exists(dir["m"]));
    }

    [Fact]
    public void ListedWithoutTensor_UnknownName_OrWrongShape_IsAClearError()
    {
        using var dir = new TempDir();
        using (TrainAndSave(dir["adapter"], "lm_head")) { }
        string configPath = Path.Combine(dir["adapter"], PeftAdapterConfig.FileName);
        var config = PeftAdapterConfig.Read(configPath);

        // Not listed (PEFT's save_embedding_layers writes the same keys): still the head that replaces the base's.
        (config with { ModulesToSave = null }).Write(configPath);
        Assert.Equal(["lm_head"], LoraWeights.ReadPeft(dir["adapter"]).SavedModules.Select(m => m.Module));

        (config with { ModulesToSave = ["lm_head", "embed_tokens"] }).Write(configPath);
        var e = Assert.Throws<Core.UserErrorException>(() => LoraWeights.ReadPeft(dir["adapter"]));
        Assert.Contains("base_model.model.model.embed_tokens.weight", e.Message);

        (config with { ModulesToSave = ["lm_head", "score"] }).Write(configPath);
        e = Assert.Throws<Core.UserErrorException>(() => LoraWeights.ReadPeft(dir["adapter"]));
        Assert.Contains("'score'", e.Message);

        // A head for another vocabulary (a resized embedding) is refused with both shapes before anything changes.
        var wrong = new LoraWeights([], "resized", savedModules: [new SavedModuleWeights("lm_head", 520, 64, new float[520 * 64])]);
        using var model = AdapterFixtures.LoadModel();
        e = Assert.Throws<Core.UserErrorException>(() => wrong.AttachTo(model));
        Assert.Contains("[520, 64]", e.Message);
        Assert.Contains("[512, 64]", e.Message);
    }

    [Theory]
    [InlineData("score", false, "sft", "'score'")]
    [InlineData("lm_head", true, "sft", "full_fine_tuning")]
    [InlineData("embed_tokens", false, "dpo", "dpo")]
    public void Settings_RefuseWhatModulesToSaveCannotDo(string module, bool full, string objective, string expected)
    {
        var s = Settings(module) with { FullFineTuning = full, Objective = objective };
        var e = Assert.Throws<Core.UserErrorException>(s.Validate);
        Assert.Contains("modules_to_save", e.Message);
        Assert.Contains(expected, e.Message);
    }
}
