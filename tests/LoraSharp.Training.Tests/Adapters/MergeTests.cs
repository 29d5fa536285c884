// Merge: golden W' = W + 2·B·A, the merged model's loss, GGUF output that loads and generates, dtypes, scales, and
// bad input refused before anything is written.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Training.Adapters;
using LoraSharp.Training.Peft;

namespace LoraSharp.Training.Tests.Adapters;

public class MergeTests
{
    private static MergeReport MergeGolden(string outPath, MergeOptions? options = null, double scale = 1.0) =>
        AdapterMerger.Merge(AdapterFixtures.HfFolder, [(AdapterFixtures.LoraFolder, scale)], outPath, options ?? new MergeOptions());

    [Fact]
    public void Merge_GoldenAdapter_EqualsGoldenMergedWithin1e6()
    {
        using var dir = new TempDir();
        var report = MergeGolden(dir["merged"]);
        Assert.Equal(35, report.MergedWeights);
        var actual = AdapterFixtures.ReadAll(Path.Combine(dir["merged"], "model.safetensors"));
        var expected = AdapterFixtures.ReadAll(AdapterFixtures.Golden("lora", "merged.safetensors"));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected) TestData.AssertClose(actual[name], e, 1e-6, what: name);
        // Tokenizer and config files come along; the folder loads as a model.
        foreach (var f in new[] { "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(dir["merged"], f)), f);
        Assert.Equal(["merged"], dir.Entries);
    }

    [Fact]
    public void Merge_GoldenAdapter_LossEqualsAdapterForwardLoss()
    {
        using var dir = new TempDir();
        MergeGolden(dir["merged"]);
        using var merged = AdapterFixtures.LoadModel(dir["merged"]);
        var batch = AdapterFixtures.GoldenBatch();
        Assert.Equal(AdapterFixtures.GoldenLoss, merged.Loss(batch), 5e-6);
        using var withAdapter = AdapterFixtures.LoadModel();
        AdapterLoader.Attach(withAdapter, AdapterFixtures.LoraFolder);
        Assert.Equal(withAdapter.Loss(batch), merged.Loss(batch), 1e-6);
    }

    [Fact]
    public void Merge_HalfScaleTwice_EqualsFullScaleOnce()
    {
        using var dir = new TempDir();
        var lora = AdapterFixtures.LoraFolder;
        AdapterMerger.Merge(AdapterFixtures.HfFolder, [(lora, 0.5), (lora, 0.5)], dir["twice"], new MergeOptions());
        MergeGolden(dir["once"]);
        var a = AdapterFixtures.ReadAll(Path.Combine(dir["twice"], "model.safetensors"));
        var b = AdapterFixtures.ReadAll(Path.Combine(dir["once"], "model.safetensors"));
        foreach (var (name, v) in b) TestData.AssertClose(a[name], v, 1e-7, what: name);
    }

    [Fact]
    public void Merge_OneAndTwoThreads_WriteIdenticalBytes()
    {
        using var dir = new TempDir();
        using (Core.Threading.Threads.Limit(1)) MergeGolden(dir["one"]);
        TestSupport.TwoThreads.Run(() => MergeGolden(dir["two"]));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir["one"], "model.safetensors")), File.ReadAllBytes(Path.Combine(dir["two"], "model.safetensors")));
    }

    [Fact]
    public void Merge_Bf16DType_WritesBf16AndRecordsTorchDtype()
    {
        using var dir = new TempDir();
        var report = MergeGolden(dir["bf16"], new MergeOptions { DType = "bf16" });
        Assert.Equal("BF16", report.DType);
        using var st = SafetensorsFile.Open(Path.Combine(dir["bf16"], "model.safetensors"));
        Assert.All(st.Tensors, t => Assert.Equal(DType.BF16, t.DType));
        Assert.Contains("\"bfloat16\"", File.ReadAllText(Path.Combine(dir["bf16"], "config.json")));
        var expected = AdapterFixtures.ReadAll(AdapterFixtures.Golden("lora", "merged.safetensors"));
        using var q = st.GetTensor("model.layers.2.self_attn.q_proj.weight");
        var values = new float[q.ElementCount];
        Bf16.ToFloat(q.AsSpan<ushort>(), values);
        TestData.AssertClose(values, expected["model.layers.2.self_attn.q_proj.weight"], 0.02, what: "bf16 q_proj");
    }

    private static int[] Greedy(LlamaModel model, int steps)
    {
        var cache = model.CreateCache(steps + 1);
        var ids = new List<int> { 1 };
        var logits = model.ForwardCached([1], cache);
        for (int i = 0; i < steps; i++)
        {
            int best = 0;
            for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
            ids.Add(best);
            logits = model.ForwardCached([best], cache);
        }
        return ids.ToArray();
    }

    [Fact]
    public void Merge_ToGgufFromHfBase_LoadsAndGeneratesLikeHfMerge()
    {
        using var dir = new TempDir();
        MergeGolden(dir["merged"]);
        var report = MergeGolden(dir["merged.gguf"], new MergeOptions { Format = "gguf" });
        Assert.Equal("F32", report.DType);
        using (var g = GgufFile.Open(dir["merged.gguf"]))
        {
            Assert.Equal("llama", g.Get("general.architecture")!.AsString());
            Assert.Equal(new long[] { 64, 32 }, g.Info("blk.0.attn_k.weight").Dims);
        }
        using var hf = AdapterFixtures.LoadModel(dir["merged"]);
        using var gguf = AdapterFixtures.LoadModel(dir["merged.gguf"]);
        Assert.Equal(Greedy(hf, 12), Greedy(gguf, 12));
        var batch = AdapterFixtures.GoldenBatch();
        Assert.Equal(hf.Loss(batch), gguf.Loss(batch), 1e-6);

        // The tokenizer built from tokenizer.json encodes like the HF tokenizer.
        using var loadedGguf = ModelLoader.Load(dir["merged.gguf"], new ModelLoadOptions { BaseDType = "stored" });
        using var loadedHf = ModelLoader.Load(dir["merged"], new ModelLoadOptions { BaseDType = "stored" });
        var tg = GgufTokenizer.ForModel(loadedGguf);
        var th = GgufTokenizer.ForModel(loadedHf);
        foreach (var text in new[] { "Once upon a time, there was a little dog named Max.", "Lily saw a big red ball in the park.", "café 🙂  two  spaces" })
            Assert.Equal(th.EncodeToIds(text), tg.EncodeToIds(text));
    }

    [Fact]
    public void Merge_ToGgufFromGgufBase_CopiesMetadataAndMatchesHfMerge()
    {
        using var dir = new TempDir();
        MergeGolden(dir["merged"]);
        AdapterMerger.Merge(AdapterFixtures.GgufF32, [(AdapterFixtures.LoraFolder, 1.0)], dir["m.gguf"], new MergeOptions { Format = "gguf" });
        using (var g = GgufFile.Open(dir["m.gguf"]))
        using (var b = GgufFile.Open(AdapterFixtures.GgufF32))
        {
            Assert.Equal(b.Get("tokenizer.ggml.tokens")!.AsArray<string>(), g.Get("tokenizer.ggml.tokens")!.AsArray<string>());
            Assert.Equal(0L, g.Get("general.file_type")!.AsInt64());
        }
        using var hf = AdapterFixtures.LoadModel(dir["merged"]);
        using var gguf = AdapterFixtures.LoadModel(dir["m.gguf"]);
        Assert.Equal(Greedy(hf, 12), Greedy(gguf, 12));
    }

    [Fact]
    public void Merge_GgufBaseToHfFolder_WritesConfigAndSameWeights()
    {
        using var dir = new TempDir();
        var report = AdapterMerger.Merge(AdapterFixtures.GgufF32, [(AdapterFixtures.LoraFolder, 1.0)], dir["hf"], new MergeOptions());
        Assert.Contains(report.Notes, n => n.Contains("no tokenizer files", StringComparison.Ordinal));
        var actual = AdapterFixtures.ReadAll(Path.Combine(dir["hf"], "model.safetensors"));
        var expected = AdapterFixtures.ReadAll(AdapterFixtures.Golden("lora", "merged.safetensors"));
        foreach (var (name, e) in expected) TestData.AssertClose(actual[name], e, 1e-6, what: name);
        using var model = AdapterFixtures.LoadModel(dir["hf"]);
        Assert.Equal(AdapterFixtures.GoldenLoss, model.Loss(AdapterFixtures.GoldenBatch()), 5e-6);
    }

    [Fact]
    public void Merge_ToGgufQ8_0_QuantizesMatricesAndKeepsOddRowsF16()
    {
        using var dir = new TempDir();
        var report = MergeGolden(dir["q8.gguf"], new MergeOptions { Format = "gguf", DType = "q8_0" });
        using (var g = GgufFile.Open(dir["q8.gguf"]))
        {
            Assert.Equal(DType.Q8_0, g.Info("blk.0.attn_q.weight").DType);
            Assert.Equal(DType.F16, g.Info("blk.0.ffn_down.weight").DType);   // rows of 172
            Assert.Equal(DType.F32, g.Info("blk.0.attn_norm.weight").DType);
            Assert.Equal(7L, g.Get("general.file_type")!.AsInt64());
        }
        Assert.Contains(report.Notes, n => n.Contains("ffn_down", StringComparison.Ordinal) || n.Contains("down_proj", StringComparison.Ordinal));
        using var model = AdapterFixtures.LoadModel(dir["q8.gguf"]);
        Assert.Equal(AdapterFixtures.GoldenLoss, model.Loss(AdapterFixtures.GoldenBatch()), 0.05);
    }

    [Fact]
    public void Merge_IntoQuantizedQ4_0Base_AddsTheUpdateToTheDequantizedWeights_OrRequantizesOnRequest()
    {
        using var dir = new TempDir();
        string q4 = SharedFixtures.Path("models", "stories260K-gguf", "stories260K-Q4_0.gguf");
        var report = AdapterMerger.Merge(q4, [(AdapterFixtures.LoraFolder, 1.0)], dir["hf"], new MergeOptions());
        Assert.Equal("F16", report.DType);   // a quantized base merges into F16 by default, and says why
        Assert.Contains(report.Notes, n => n.Contains("re-quantized", StringComparison.Ordinal));
        var f32Merged = AdapterMerger.Merge(q4, [(AdapterFixtures.LoraFolder, 1.0)], dir["hf32"], new MergeOptions { DType = "f32" });
        // Expected: golden merged (W + 2 B A) minus W plus the dequantized Q4_0 weight, i.e. deq(Wq) + 2 B A.
        var merged = AdapterFixtures.ReadAll(Path.Combine(dir["hf32"], "model.safetensors"));
        var golden = AdapterFixtures.ReadAll(AdapterFixtures.Golden("lora", "merged.safetensors"));
        var original = AdapterFixtures.ReadAll(Path.Combine(AdapterFixtures.HfFolder, "model.safetensors"));
        using var deq = ModelLoader.Load(q4, new ModelLoadOptions { BaseDType = "f32" });
        foreach (var (name, g) in golden)
        {
            var w = deq.Tensors[name].Floats;
            var expected = new float[g.Length];
            for (int i = 0; i < g.Length; i++) expected[i] = (float)((double)g[i] - original[name][i] + w[i]);
            TestData.AssertClose(merged[name], expected, 2e-6, what: name);
        }

        AdapterMerger.Merge(q4, [(AdapterFixtures.LoraFolder, 1.0)], dir["q4.gguf"], new MergeOptions { Format = "gguf", DType = "q4_0" });
        using (var g = GgufFile.Open(dir["q4.gguf"]))
        {
            Assert.Equal(DType.Q4_0, g.Info("blk.0.attn_q.weight").DType);
            Assert.Equal(DType.F16, g.Info("blk.0.ffn_down.weight").DType);   // rows of 172 are not Q4_0 blocks
            Assert.Equal(2L, g.Get("general.file_type")!.AsInt64());
        }
        // Re-quantizing rounds the merged weights again: the loss moves, the F32 merge of the same base does not.
        using var requantized = AdapterFixtures.LoadModel(dir["q4.gguf"]);
        using var exact = AdapterFixtures.LoadModel(dir["hf32"]);
        double lq = requantized.Loss(AdapterFixtures.GoldenBatch()), le = exact.Loss(AdapterFixtures.GoldenBatch());
        Assert.True(Math.Abs(lq - le) > 1e-4 && Math.Abs(lq - le) < 1.0, $"re-quantized loss {lq} vs merged f32 {le}");
    }

    [Fact]
    public void Merge_AdapterForAnotherBase_ThrowsBeforeWriting()
    {
        using var dir = new TempDir();
        var wrong = new LoraWeights([new LoraModuleWeights("model.layers.0.self_attn.q_proj", 2, 63, 64, new float[2 * 63], new float[64 * 2], 1.0)], "wrong");
        wrong.SavePeft(dir["wrong"]);
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => AdapterMerger.Merge(AdapterFixtures.HfFolder, [(dir["wrong"], 1.0)], dir["out"], new MergeOptions()));
        Assert.Contains("[64, 64]", e.Message);
        Assert.Contains("[64, 63]", e.Message);
        Assert.Contains("another base", e.Message);
        Assert.Equal(["wrong"], dir.Entries);
    }

    [Fact]
    public void Merge_NonFiniteAdapterValue_ThrowsBeforeWriting()
    {
        using var dir = new TempDir();
        var bad = AdapterFixtures.RandomAdapter(3, 2, 1.0);
        bad.Modules[4].B[7] = float.NaN;
        // SavePeft refuses non-finite values itself, so write the file the way another tool would.
        var tensors = bad.Modules.SelectMany(m => new[]
        {
            new KeyValuePair<string, Tensor>(Models.Lora.LoraKeys.A(m.Module), Tensor.FromFloats(m.A, m.Rank, m.InFeatures)),
            new KeyValuePair<string, Tensor>(Models.Lora.LoraKeys.B(m.Module), Tensor.FromFloats(m.B, m.OutFeatures, m.Rank)),
        }).ToList();
        Directory.CreateDirectory(dir["bad"]);
        SafetensorsWriter.Write(Path.Combine(dir["bad"], PeftAdapter.WeightsFile), tensors);
        File.Copy(Path.Combine(AdapterFixtures.LoraFolder, "adapter_config.json"), Path.Combine(dir["bad"], "adapter_config.json"));
        foreach (var (_, t) in tensors) t.Dispose();
        var e = Assert.Throws<LoraSharp.Formats.ModelFormatException>(() => AdapterMerger.Merge(AdapterFixtures.HfFolder, [(dir["bad"], 1.0)], dir["out"], new MergeOptions()));
        Assert.Contains("non-finite", e.Message);
        Assert.Contains(bad.Modules[4].Module, e.Message);
        Assert.Equal(["bad"], dir.Entries);
    }

    [Fact]
    public void Merge_SafeModeF16Overflow_ThrowsBeforeWriting()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<LoraSharp.Core.UserErrorException>(() => MergeGolden(dir["out"], new MergeOptions { DType = "f16", Safe = true }, scale: 1e9));
        Assert.Contains("overflows", e.Message);
        Assert.Empty(dir.Entries);
    }

    [Fact]
    public void Merge_ExistingOutput_RefusedWithoutOverwrite()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["out"]);
        var e = Assert.Throws<IOException>(() => MergeGolden(dir["out"]));
        Assert.Contains("--overwrite", e.Message);
    }
}
