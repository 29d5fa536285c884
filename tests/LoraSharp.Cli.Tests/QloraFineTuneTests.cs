// QLoRA end to end: fine-tuning stories260K on its Q4_0 GGUF file used as it is (4-bit weights decoded inside the
// matmuls) lowers the validation loss, and the adapter it writes loads on the F32 model, moves its logits the way
// it moves the Q4_0 model's, and lowers the F32 model's loss too. Also an NF4 (double-quantized) base from the
// Hugging Face folder, and the errors for settings that cannot work.
using LoraSharp.Core;
using LoraSharp.App;
using LoraSharp.Models.Evaluation;
using LoraSharp.Models.Llama;
using LoraSharp.Training;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class QloraFineTuneTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-qlora-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Gguf(string kind) => SharedFixtures.Path("models", "stories260K-gguf", $"stories260K-{kind}.gguf");

    private sealed class Lines : IFineTuneObserver
    {
        public List<string> Info { get; } = [];
        void IFineTuneObserver.Info(string line) => Info.Add(line);
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { }
    }

    private (FineTuneResult Result, Lines Log) Train(string model, string name, string? baseDType = null, bool doubleQuant = false)
    {
        var s = new TrainingSettings
        {
            LoraName = name, Dataset = StoryDataset.Write(_dir, "train.json", 32, 1), EvalDataset = StoryDataset.Write(_dir, "eval.json", 8, 2),
            Format = "alpaca", CutoffLen = 128, MicroBatchSize = 8, BatchSize = 8, Epochs = 12, LearningRate = 3e-3, WarmupSteps = 1,
            LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.0, TargetModules = ["all-linear"], EvalSteps = 0, Seed = 5,
            BaseDType = baseDType, DoubleQuant = doubleQuant,
        };
        var log = new Lines();
        var result = FineTuneJob.Run(new FineTuneRequest { Model = model, Settings = s, OutputRoot = Path.Combine(_dir, "loras") }, log);
        return (result, log);
    }

    [Fact]
    public void Q4_0Gguf_AsItIs_LowersValidationLoss_AndTheAdapterTransfersToF32()
    {
        var (result, log) = Train(Gguf("Q4_0"), "q4");
        Assert.True(result.Outcome.FinalEvalLoss < result.InitialEvalLoss * 0.6, $"eval loss {result.InitialEvalLoss} -> {result.Outcome.FinalEvalLoss}");
        Assert.Contains(log.Info, l => l.StartsWith("base weights: ", StringComparison.Ordinal) && l.Contains("q4_0"));

        var ids = new[] { 1, 403, 261, 355, 442, 269, 415, 297, 261, 397, 374, 293, 268 };
        var batch = new Batch(1, ids.Length, ids, labels: ids);
        using var q4 = ModelSession.Open(Gguf("Q4_0"));
        using var q4Tuned = ModelSession.Open(Gguf("Q4_0"), [new AdapterSpec(result.AdapterFolder)]);
        using var f32 = ModelSession.Open(Gguf("F32"));
        using var f32Tuned = ModelSession.Open(Gguf("F32"), [new AdapterSpec(result.AdapterFolder)]);
        var a = q4.Model.Logits(batch);
        var b = q4Tuned.Model.Logits(batch);
        var c = f32.Model.Logits(batch);
        var d = f32Tuned.Model.Logits(batch);
        // Close logits: with the adapter, F32 and Q4_0 are no further apart than the bases are; and the adapter's
        // effect (tuned minus base) points the same way on either base (cosine 0.91 measured; Q4_0 moves this tiny
        // model's logits by up to 4.7, golden README 4.2).
        double bases = TestData.MaxAbsDiff(c, a), tuned = TestData.MaxAbsDiff(d, b);
        double dot = 0, nq = 0, nf = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double eq = b[i] - a[i], ef = d[i] - c[i];
            dot += eq * ef;
            nq += eq * eq;
            nf += ef * ef;
        }
        double cosine = dot / Math.Sqrt(nq * nf);
        Assert.True(tuned <= 1.5 * bases, $"with the adapter the bases differ by {tuned}, without by {bases}");
        Assert.True(cosine > 0.8, $"the adapter's effect on F32 and on Q4_0 has cosine {cosine}");

        // And it lowers the F32 model's loss on the training distribution.
        string sample = "Tell me about Lily and the ball.";
        var tok = f32.Tokenizer.EncodeToIds(sample + " Lily had a red ball. Lily loved the red ball.");
        var text = new Batch(1, tok.Length, tok, labels: tok);
        Assert.True(f32Tuned.Model.Loss(text) < f32.Model.Loss(text), "the Q4_0-trained adapter does not help the F32 model");
    }

    [Fact]
    public void Nf4DoubleQuantBase_FromHfFolder_Trains()
    {
        var (result, log) = Train(SharedFixtures.Stories260KHf, "nf4", "nf4", doubleQuant: true);
        Assert.True(result.Outcome.FinalEvalLoss < result.InitialEvalLoss * 0.6, $"eval loss {result.InitialEvalLoss} -> {result.Outcome.FinalEvalLoss}");
        Assert.Contains(log.Info, l => l.Contains("nf4+dq"));
        // down_proj rows (172) are not whole NF4 blocks (64): kept F32, and the log says so.
        Assert.Contains(log.Info, l => l.StartsWith("note: model.layers.0.mlp.down_proj.weight: kept as F32", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("stored")]
    [InlineData("nf4")]
    public void Perplexity_OnACompressedBase_EqualsItsDequantizedTwin_OrStaysClose(string baseDType)
    {
        string text = Path.Combine(_dir, "text.txt");
        File.WriteAllText(text, File.ReadAllText(SharedFixtures.Path("text", "war-and-peace.txt"))[..6000]);
        PerplexityResult Run(string model, string? dtype) => PerplexityJob.Run(new PerplexityRequest
        {
            Model = model, File = text, MaxLength = 128, Stride = 64, BaseDType = dtype,
        });
        if (baseDType == "stored")
        {
            // The Q4_0 file as it is against the same file widened to f32 at load: the same weights.
            var q4 = Run(Gguf("Q4_0"), "stored");
            var widened = Run(Gguf("Q4_0"), "f32");
            Assert.Equal(widened.Perplexity, q4.Perplexity, widened.Perplexity * 1e-5);
        }
        else
        {
            // NF4 rounds the HF model's weights: close to, but not the same as, the f32 model.
            var f32 = Run(SharedFixtures.Stories260KHf, null);
            var nf4 = Run(SharedFixtures.Stories260KHf, "nf4");
            Assert.NotEqual(f32.Perplexity, nf4.Perplexity);
            Assert.InRange(nf4.Perplexity / f32.Perplexity, 0.9, 1.25);
        }
    }

    [Theory]
    [InlineData("int3", false, "base_dtype")]
    [InlineData("q4_0", true, "double_quant")]
    public void BadBaseSettings_FailBeforeAnyWork_NamingTheSetting(string baseDType, bool doubleQuant, string named)
    {
        var e = Assert.Throws<UserErrorException>(() => Train(SharedFixtures.Stories260KHf, "bad", baseDType, doubleQuant));
        Assert.Contains(named, e.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir, "loras", "bad")));
    }
}
