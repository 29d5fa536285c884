// The batches feed the real stories260K model: padding changes nothing (the loss of a padded batch equals the
// token-weighted mean of each sample's own loss), and only trained labels count.
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.TestSupport;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class ModelFeedTests
{
    [Fact]
    public void PaddedBatchLoss_EqualsWeightedSampleLosses()
    {
        using var loaded = ModelLoader.Load(SharedFixtures.Stories260KHf);
        var model = LlamaModel.FromTensors(loaded.Config, loaded.Tensors);
        var format = FormatFile.Parse("""{"instruction,output": "Q: %instruction%\nA: %output%"}""", "f");
        var rows = JsonRows.Parse("""
            {"instruction": "Who sat on the mat?", "output": "The cat sat on the mat."}
            {"instruction": "Where?", "output": "In the park, under a big tree, near the pond."}
            {"instruction": "What did Lily see?", "output": "She saw a bird."}
            """u8, "mem");
        var ds = FormattedDataset.Build(rows, "mem", format, DataTestKit.Tok,
            new FormattedOptions { TrainOnlyAfter = "A:", AddEosToken = true, ContextLength = loaded.Config.MaxPositionEmbeddings });
        var batcher = new Batcher(ds.Samples, 3, 64, Batcher.ResolvePadId(DataTestKit.Tok), seed: 1, shuffle: false);
        var batch = batcher.NextBatch();
        Assert.True(ds.Samples.Select(s => s.Length).Distinct().Count() > 1, "samples must differ in length so padding happens");

        double batchLoss = model.Loss(batch);
        double sum = 0;
        int count = 0;
        foreach (var s in ds.Samples)
        {
            var single = new Batch(1, s.Length, s.InputIds, labels: s.Labels);
            sum += model.Loss(single) * single.TargetCount;
            count += single.TargetCount;
        }
        Assert.Equal(count, batch.TargetCount);
        Assert.True(double.IsFinite(batchLoss));
        Assert.True(Math.Abs(batchLoss - sum / count) < 1e-5 * Math.Max(1, Math.Abs(batchLoss)), $"{batchLoss} vs {sum / count}");
    }
}
