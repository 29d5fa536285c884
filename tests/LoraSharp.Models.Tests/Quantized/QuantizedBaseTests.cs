// QLoRA bases: a model whose frozen weights stay in a stored dtype (every ggml quant type, NF4, f16, bf16) gives the
// same logits, decode logits and LoRA gradients as the same model with those weights dequantized to f32 up front;
// a compressed tied embedding serves both the lookup and the output projection.
using LoraSharp.Core.Optim;
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Quantized;

public class QuantizedBaseTests
{
    public static TheoryData<DType> Types => new(QuantTestData.StoredTypes);

    // Every row length (C = 256, H = 512) is a whole number of blocks of every type, K-quants' 256 included.
    private static LlamaConfig Config(bool tied) => new()
    {
        HiddenSize = 256, IntermediateSize = 512, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        HeadDim = 64, VocabSize = 320, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5, RopeTheta = 10000, TieWordEmbeddings = tied,
    };

    /// <summary>Random weights of <paramref name="type"/> for every matrix (norms F32), and their f32 twins.</summary>
    private static (Dictionary<string, Tensor> Stored, Dictionary<string, Tensor> Widened) Weights(LlamaConfig c, DType type)
    {
        var stored = new Dictionary<string, Tensor>();
        var widened = new Dictionary<string, Tensor>();
        int seed = 0;
        foreach (var (name, shape) in LoraSharp.Models.Loading.LlamaTensorLayout.Expected(c))
        {
            Tensor t;
            if (shape.Length == 1)
            {
                t = Tensor.Zeros(DType.F32, shape);
                t.Floats.Fill(1f);
            }
            else
            {
                t = QuantTestData.RandomTensor(type, shape[0], shape[1], seed++, amplitude: name.Contains("embed") ? 1.0 : 0.15);
            }
            stored[name] = t;
            widened[name] = Widen(t);
        }
        return (stored, widened);
    }

    private static Tensor Widen(Tensor t) => Tensor.FromFloats(QuantTestData.Dequantize(t), t.Shape);

    private static Batch RandomBatch(LlamaConfig c, int B, int T, int seed)
    {
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, B * T).Select(_ => rng.Next(c.VocabSize)).ToArray();
        return new Batch(B, T, ids, labels: ids);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void StoredBase_LogitsDecodeAndLoraGrads_EqualDequantizedF32(DType type)
    {
        foreach (bool tied in new[] { true, false })
        {
            var c = Config(tied);
            var (stored, widened) = Weights(c, type);
            using var q = LlamaModel.FromTensors(c, stored, "stored");
            using var f = LlamaModel.FromTensors(c, widened, "widened");
            foreach (var t in stored.Values.Concat(widened.Values)) t.Dispose();
            Assert.Equal(type, q.Layers[0].Q.Packed.StorageDType);
            Assert.Equal(type, q.Embedding!.DType);

            var batch = RandomBatch(c, 2, 24, seed: 1);
            double logits = TestData.MaxAbsDiff(q.Logits(batch), f.Logits(batch));
            Assert.True(logits <= 1e-4, $"{type} tied={tied}: max |logits diff| {logits:E2}");

            // Decode: a prefill of 5 tokens, then single tokens (the few-row product path), with float products
            // (Q8DecodeActivations' integer products are not exact; Q8Decode_IsWithinItsBound checks them).
            q.Q8DecodeActivations = false;
            var cq = q.CreateCache(16);
            var cf = f.CreateCache(16);
            int[] prompt = [3, 17, 200, 5, 9];
            double decode = TestData.MaxAbsDiff(q.ForwardCached(prompt, cq), f.ForwardCached(prompt, cf));
            foreach (int token in new[] { 11, 250, 7 })
                decode = Math.Max(decode, TestData.MaxAbsDiff(q.ForwardCached([token], cq), f.ForwardCached([token], cf)));
            Assert.True(decode <= 1e-4, $"{type} tied={tied}: max |decode logits diff| {decode:E2}");

            // LoRA gradients through the decoded input gradient of every projection.
            var settings = new LoraSettings { Rank = 4, Alpha = 8, TargetModules = ["all-linear"], Init = "none" };
            LoraInjector.Attach(q, settings, seed: 5);
            LoraInjector.Attach(f, settings, seed: 5);
            var pq = q.TrainableParameters();
            var pf = f.TrainableParameters();
            Optimizer.ZeroGrad(pq);
            Optimizer.ZeroGrad(pf);
            double lq = q.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
            double lf = f.ForwardBackward(batch, 1f / batch.TargetCount, 0, out _);
            Assert.True(Math.Abs(lq - lf) <= 1e-4 * Math.Abs(lf), $"{type}: loss {lq} vs {lf}");
            for (int i = 0; i < pq.Count; i++)
            {
                var gq = pq[i].Grad.Floats;
                var gf = pf[i].Grad.Floats;
                double scale = gf.ToArray().Max(v => Math.Abs((double)v));
                double diff = TestData.MaxAbsDiff(gq, gf);
                Assert.True(diff <= 1e-4 * scale + 1e-7, $"{type} tied={tied} {pq[i].Name}: max |grad diff| {diff:E2} (max |grad| {scale:E2})");
            }
        }
    }

    // Q8DecodeActivations (default on): decode over Q4_0/Q8_0 quantizes activations to Q8_0 as llama.cpp does. On this
    // random model the decode logits move from the float products' by at most 2% of the largest logit (measured 2026-12-06:
    // Q4_0 0.19 of 33 = 0.57%, Q8_0 0.63 of 51 = 1.2%: random weights and activations, no structure to average out);
    // every other type stays exact.
    [Theory]
    [InlineData(DType.Q4_0, 0.02)]
    [InlineData(DType.Q8_0, 0.0)]   // Q8_0 keeps the float products at decode (StoredPanelSource.SupportsQ8Dot)
    [InlineData(DType.NF4, 0.0)]
    public void Q8Decode_IsWithinItsBound_OfTheFloatProducts(DType type, double bound)
    {
        var c = Config(tied: true);
        var (stored, widened) = Weights(c, type);
        using var q = LlamaModel.FromTensors(c, stored, "stored");
        foreach (var t in stored.Values.Concat(widened.Values)) t.Dispose();
        using var exact = LlamaModel.FromTensors(c, Weights(c, type).Stored, "stored", consumeTensors: true);
        exact.Q8DecodeActivations = false;
        Assert.True(q.Q8DecodeActivations);
        var cq = q.CreateCache(40);
        var ce = exact.CreateCache(40);
        int[] prompt = [3, 17, 200, 5, 9];
        // The prompt's 5 rows take float products; its one output row is a few-row product like a decode step's.
        double max = TestData.MaxAbsDiff(q.ForwardCached(prompt, cq), exact.ForwardCached(prompt, ce)), range = 0;
        var rng = new Random(2);
        for (int i = 0; i < 30; i++)
        {
            int token = rng.Next(c.VocabSize);
            var a = q.ForwardCached([token], cq);
            var b = exact.ForwardCached([token], ce);
            max = Math.Max(max, TestData.MaxAbsDiff(a, b));
            foreach (float v in b) range = Math.Max(range, Math.Abs(v));
        }
        Console.WriteLine($"Q8 decode {type}: max |logits - float products| {max:E3} over 30 tokens (max |logit| {range:F2})");
        Assert.True(max <= bound * range, $"{type}: max |Q8 decode - float decode logits| = {max:E3} > {bound} x max |logit| {range:F2}");
        if (bound > 0) Assert.True(max > 0, $"{type}: the integer path was not taken");
    }

    [Fact]
    public void StoredBase_HoldsTheStoredBytes_NotF32Copies()
    {
        var c = Config(tied: true);
        var (stored, widened) = Weights(c, DType.Q4_0);
        using var q = LlamaModel.FromTensors(c, stored, "stored");
        using var f = LlamaModel.FromTensors(c, widened, "widened");
        long matrices = stored.Where(kv => kv.Value.Shape.Length == 2).Sum(kv => kv.Value.ByteLength);
        long vectors = stored.Where(kv => kv.Value.Shape.Length == 1).Sum(kv => kv.Value.ByteLength);
        foreach (var t in stored.Values.Concat(widened.Values)) t.Dispose();
        // The tied output reads the embedding's bytes: nothing is held twice.
        Assert.Equal(matrices + vectors, q.BaseWeightBytes);
        Assert.True(q.BaseWeightBytes < 0.16 * f.BaseWeightBytes, $"{q.BaseWeightBytes} vs f32 {f.BaseWeightBytes}");
    }
}
