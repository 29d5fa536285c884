// Packed batches (Batch.SequenceIds): positions restart, boundary targets are ignored, and on stories260K with a
// LoRA attached the loss sum and every LoRA gradient of one packed row equal the sums over its samples run one by
// one (and over the same samples right-padded into B rows).
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Llama;

public class PackedBatchTests
{
    [Fact]
    public void PositionIds_RestartAtEachSegment_AndTargetsAtBoundariesAreIgnored()
    {
        int[] ids = [10, 11, 12, 20, 21, 30, 31, 32, 33];
        int[] labels = [10, 11, 12, -100, 21, 30, 31, 32, 33];
        int[] seg = [4, 4, 4, 7, 7, 9, 9, 9, 9];
        var batch = new Batch(1, 9, ids, labels: labels, sequenceIds: seg);
        var pos = new int[9];
        batch.PositionIds(pos);
        Assert.Equal([0, 1, 2, 0, 1, 0, 1, 2, 3], pos);
        var targets = new int[9];
        batch.ShiftedTargets(targets);
        // t=2 and t=4 end a sample: their next tokens (20, 30) start another one.
        Assert.Equal([11, 12, -100, 21, -100, 31, 32, 33, -100], targets);
        Assert.Equal(targets.Count(t => t != Batch.IgnoreIndex), batch.TargetCount);
        Assert.Equal(4, batch.LongestSequence);
        Assert.True(batch.IsPacked);
    }

    [Fact]
    public void WithoutSequenceIds_PositionsAndTargetsAreAsBefore()
    {
        var batch = new Batch(2, 3, [1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 0]);
        var pos = new int[6];
        batch.PositionIds(pos);
        Assert.Equal([0, 1, 2, 0, 1, 2], pos);
        var targets = new int[6];
        batch.ShiftedTargets(targets);
        Assert.Equal([2, 3, -100, 5, -100, -100], targets);
        Assert.Equal(3, batch.TargetCount);
        Assert.Equal(3, batch.LongestSequence);
        Assert.False(batch.IsPacked);
    }

    [Fact]
    public void DecreasingSequenceIds_AreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => new Batch(1, 3, [1, 2, 3], sequenceIds: [0, 1, 0]));
        Assert.Contains("non-decreasing", e.Message);
        Assert.Throws<ArgumentException>(() => new Batch(1, 3, [1, 2, 3], sequenceIds: [0, 1]));
    }

    private static (int[] Ids, int[] Labels)[] Samples()
    {
        var rng = new Random(15);
        int[] lengths = [9, 23, 14];
        return lengths.Select((L, s) =>
        {
            var ids = Enumerable.Range(0, L).Select(_ => rng.Next(3, 512)).ToArray();
            ids[0] = 1;   // BOS
            var labels = (int[])ids.Clone();
            if (s == 1) for (int t = 0; t < 6; t++) labels[t] = Batch.IgnoreIndex;   // a prompt that is not trained
            return (ids, labels);
        }).ToArray();
    }

    private static Batch Packed((int[] Ids, int[] Labels)[] samples)
    {
        var ids = samples.SelectMany(s => s.Ids).ToArray();
        var labels = samples.SelectMany(s => s.Labels).ToArray();
        var seg = samples.SelectMany((s, i) => Enumerable.Repeat(i, s.Ids.Length)).ToArray();
        return new Batch(1, ids.Length, ids, labels: labels, sequenceIds: seg);
    }

    private static Batch Padded((int[] Ids, int[] Labels)[] samples)
    {
        int B = samples.Length, T = samples.Max(s => s.Ids.Length);
        var ids = new int[B * T];
        var mask = new byte[B * T];
        var labels = Enumerable.Repeat(Batch.IgnoreIndex, B * T).ToArray();
        for (int b = 0; b < B; b++)
        {
            samples[b].Ids.CopyTo(ids, b * T);
            samples[b].Labels.CopyTo(labels, b * T);
            mask.AsSpan(b * T, samples[b].Ids.Length).Fill(1);
        }
        return new Batch(B, T, ids, mask, labels);
    }

    /// <summary>Loss sum, target count and a copy of every LoRA gradient (of the loss sum) after running the batches.</summary>
    private static (double Loss, int Count, float[][] Grads) Run(LlamaModel model, IEnumerable<Batch> batches)
    {
        var parameters = model.TrainableParameters();
        Optimizer.ZeroGrad(parameters);
        double loss = 0;
        int count = 0;
        foreach (var b in batches)
        {
            loss += model.ForwardBackward(b, 1f, 0, out int n);
            count += n;
        }
        return (loss, count, parameters.Select(p => p.Grad.Floats.ToArray()).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PackedRow_LossAndLoraGradients_EqualTheSamplesRunOneByOne(bool checkpointing)
    {
        using var model = Stories.Load();
        Stories.AttachGoldenAdapter(model);   // r 4, dropout 0, B != 0 so every LoRA gradient is non-trivial
        model.ActivationCheckpointing = checkpointing;
        var samples = Samples();
        var alone = Run(model, samples.Select(s => new Batch(1, s.Ids.Length, s.Ids, labels: s.Labels)));
        var packed = Run(model, [Packed(samples)]);
        var padded = Run(model, [Padded(samples)]);

        Assert.Equal(alone.Count, packed.Count);
        Assert.Equal(alone.Count, padded.Count);
        Assert.Equal(Packed(samples).TargetCount, packed.Count);
        Assert.True(Math.Abs(packed.Loss - alone.Loss) <= 1e-5 * Math.Abs(alone.Loss), $"loss sum packed {packed.Loss:R} vs one by one {alone.Loss:R}");
        Assert.True(Math.Abs(padded.Loss - alone.Loss) <= 1e-5 * Math.Abs(alone.Loss), $"loss sum padded {padded.Loss:R} vs one by one {alone.Loss:R}");
        var names = model.TrainableParameters().Select(p => p.Name).ToArray();
        Assert.Equal(70, names.Length);
        for (int i = 0; i < names.Length; i++)
        {
            double max = alone.Grads[i].Max(v => Math.Abs((double)v));
            Assert.True(max > 0, $"{names[i]}: zero gradient, the test would prove nothing");
            double diff = TestData.MaxAbsDiff(packed.Grads[i], alone.Grads[i]);
            Assert.True(diff <= 1e-5 * max, $"{names[i]}: packed vs one by one max |diff| {diff:E3}, tensor max {max:E3}");
            diff = TestData.MaxAbsDiff(padded.Grads[i], alone.Grads[i]);
            Assert.True(diff <= 1e-5 * max, $"{names[i]}: padded vs one by one max |diff| {diff:E3}, tensor max {max:E3}");
        }
    }

    [Fact]
    public void PackedRow_LogitsOfEachSample_EqualTheSampleAlone()
    {
        using var model = Stories.Load();
        var samples = Samples();
        var packed = model.Logits(Packed(samples));
        int V = model.Config.VocabSize, start = 0;
        foreach (var s in samples)
        {
            var alone = model.Logits(new Batch(1, s.Ids.Length, s.Ids));
            TestData.AssertClose(packed.AsSpan(start * V, s.Ids.Length * V), alone, 2e-5, 1e-5, $"sample at {start}");
            start += s.Ids.Length;
        }
    }

    [Fact]
    public void ActivationBuffers_AreReusedWhileTheBatchFits_AndGiveTheSameBits()
    {
        var samples = Samples();
        var small = new Batch(1, samples[0].Ids.Length, samples[0].Ids, labels: samples[0].Labels);
        using var fresh = Stories.Load();
        Stories.AttachGoldenAdapter(fresh);
        var expected = Run(fresh, [small]);

        using var model = Stories.Load();
        Stories.AttachGoldenAdapter(model);
        Run(model, [Packed(samples)]);   // 46 rows
        long bytes = model.ActivationBytes;
        var reused = Run(model, [small]);   // 9 rows in the 46-row buffers
        Assert.Equal(bytes, model.ActivationBytes);
        Assert.Equal(expected.Loss, reused.Loss);
        for (int i = 0; i < expected.Grads.Length; i++) Assert.Equal(expected.Grads[i], reused.Grads[i]);
        Run(model, [Padded(samples)]);   // 3 x 23 = 69 rows: grows
        Assert.True(model.ActivationBytes > bytes);
    }

    [Fact]
    public void PackedRow_LongerThanTheContext_IsFineWhenEachSampleFits()
    {
        using var model = Stories.Load();
        int ctx = model.Config.MaxPositionEmbeddings, L = ctx / 2 + 10;
        var ids = Enumerable.Range(0, 3 * L).Select(i => 3 + i % 500).ToArray();
        var seg = Enumerable.Range(0, 3 * L).Select(i => i / L).ToArray();
        double loss = model.Loss(new Batch(1, 3 * L, ids, sequenceIds: seg));
        Assert.True(double.IsFinite(loss));
        var e = Assert.Throws<ArgumentException>(() => model.Loss(new Batch(1, ctx + 1, ids[..(ctx + 1)], sequenceIds: new int[ctx + 1])));
        Assert.Contains("max_position_embeddings", e.Message);
    }
}
