// Validation split, packing and batching: seeded determinism, padding/mask/labels, exact resume from a saved
// data position, length grouping, the trained targets packing must keep, and packed micro-batches (one row with
// sequence ids: no pad token, positions restarting, boundary targets ignored, the same targets as padded).
using LoraSharp.Models.Llama;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

public class SplitPackBatchTests
{
    /// <summary>n samples of lengths 2..maxLen (seeded), ids 10+, labels = ids except every third position.</summary>
    private static List<TrainingSample> Samples(int n, int maxLen, int seed = 1)
    {
        var rng = new Random(seed);
        var list = new List<TrainingSample>();
        for (int i = 0; i < n; i++)
        {
            int len = rng.Next(2, maxLen + 1);
            var ids = Enumerable.Range(0, len).Select(t => 10 + (i * 31 + t) % 400).ToArray();
            var labels = ids.Select((id, t) => t % 3 == 1 ? Batch.IgnoreIndex : id).ToArray();
            list.Add(new TrainingSample(ids, labels));
        }
        return list;
    }

    [Fact]
    public void Split_IsSeededDisjointAndKeepsOrder()
    {
        var s = Samples(50, 9);
        var (train, eval) = DatasetSplit.Split(s, 0.2, 42);
        Assert.Equal(10, eval.Count);
        Assert.Equal(40, train.Count);
        Assert.Equal(s.Count, train.Concat(eval).Distinct().Count());
        Assert.True(train.Select(x => s.IndexOf(x)).SequenceEqual(train.Select(x => s.IndexOf(x)).Order()));
        var (_, eval2) = DatasetSplit.Split(s, 0.2, 42);
        Assert.Equal(eval, eval2);
        var (_, eval3) = DatasetSplit.Split(s, 0.2, 43);
        Assert.NotEqual(eval, eval3);
    }

    [Fact]
    public void Split_BadArguments_AreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetSplit.Split(Samples(5, 4), 1.0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetSplit.Split(Samples(5, 4), 0, 1));
        Assert.Throws<DatasetException>(() => DatasetSplit.Split(Samples(1, 4), 0.5, 1));
        var (train, eval) = DatasetSplit.Split(Samples(3, 4), 0.01, 1);
        Assert.Single(eval);
        Assert.Equal(2, train.Count);
    }

    [Fact]
    public void Pack_FitsCutoff_KeepsTrainedTargets_SeparatesWithEos()
    {
        const int eos = 2, cutoff = 16;
        var s = Samples(40, 7);
        var packed = Packing.Pack(s, cutoff, eos);
        Assert.True(packed.Count < s.Count);
        Assert.All(packed, p => Assert.True(p.Length <= cutoff));
        Assert.Equal(s.Sum(x => x.TrainedTokenCount), packed.Sum(x => x.TrainedTokenCount));
        Assert.Equal(s.Sum(x => x.Length) + (s.Count - packed.Count), packed.Sum(x => x.Length));
        // The ids are the samples in order, with an EOS (not trained) between neighbours in one sequence.
        var expected = new List<int>();
        foreach (var p in packed) expected.AddRange(p.InputIds.Where(id => id != eos));
        Assert.Equal(s.SelectMany(x => x.InputIds), expected);
        Assert.All(packed, p => Assert.All(Enumerable.Range(0, p.Length).Where(t => p.InputIds[t] == eos), t => Assert.Equal(Batch.IgnoreIndex, p.Labels[t])));
        Assert.Throws<ArgumentException>(() => Packing.Pack(Samples(3, 30), 8, eos));
    }

    [Fact]
    public void Batch_RightPadsMasksAndIgnoresPadding()
    {
        var s = new List<TrainingSample> { new([1, 5, 6], [1, 5, 6]), new([1, 7, 8, 9, 10], [-100, -100, 8, 9, 10]) };
        var b = new Batcher(s, microBatchSize: 2, cutoffLength: 8, padId: 0, seed: 3, shuffle: false).NextBatch();
        Assert.Equal((2, 5), (b.B, b.T));
        Assert.Equal(new[] { 1, 5, 6, 0, 0, 1, 7, 8, 9, 10 }, b.InputIds);
        Assert.Equal(new byte[] { 1, 1, 1, 0, 0, 1, 1, 1, 1, 1 }, b.AttentionMask);
        Assert.Equal(new[] { 1, 5, 6, -100, -100, -100, -100, 8, 9, 10 }, b.Labels);
        var fixedT = new Batcher(s, 2, 8, 0, 3, shuffle: false, padToCutoff: true).NextBatch();
        Assert.Equal(8, fixedT.T);
        Assert.Equal(b.TargetCount, fixedT.TargetCount);
    }

    [Fact]
    public void Epochs_VisitEverySampleOnce_InSeededOrders()
    {
        var s = Samples(23, 6);
        var batcher = new Batcher(s, 4, 8, 0, seed: 7);
        Assert.Equal(6, batcher.StepsPerEpoch);
        var e0 = batcher.Order(0).ToArray();
        var e1 = batcher.Order(1).ToArray();
        Assert.Equal(Enumerable.Range(0, 23), e0.Order());
        Assert.Equal(Enumerable.Range(0, 23), e1.Order());
        Assert.NotEqual(e0, e1);
        Assert.Equal(e0, new Batcher(s, 4, 8, 0, seed: 7).Order(0));
        Assert.NotEqual(e0, new Batcher(s, 4, 8, 0, seed: 8).Order(0));
        int rows = 0;
        for (int i = 0; i < batcher.StepsPerEpoch; i++) rows += batcher.NextBatch().B;
        Assert.Equal(23, rows);
        Assert.Equal(new DataPosition(1, 0), batcher.Position);
        Assert.Equal(5, new Batcher(s, 4, 8, 0, 7, dropLast: true).StepsPerEpoch);
    }

    [Fact]
    public void Restore_ContinuesWithTheIdenticalBatches()
    {
        var s = Samples(19, 8);
        var straight = new Batcher(s, 3, 8, 0, seed: 11, groupByLength: true);
        var expected = Enumerable.Range(0, 25).Select(_ => straight.NextBatch()).ToList();

        var first = new Batcher(s, 3, 8, 0, seed: 11, groupByLength: true);
        for (int i = 0; i < 10; i++) first.NextBatch();
        var saved = first.Position;
        Assert.Equal(new DataPosition(1, 3), saved);

        var resumed = new Batcher(s, 3, 8, 0, seed: 11, groupByLength: true);
        Assert.Equal(first.Fingerprint, resumed.Fingerprint);
        resumed.Restore(saved);
        for (int i = 10; i < 25; i++)
        {
            var b = resumed.NextBatch();
            Assert.Equal(expected[i].InputIds, b.InputIds);
            Assert.Equal(expected[i].Labels, b.Labels);
            Assert.Equal(expected[i].AttentionMask, b.AttentionMask);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => resumed.Restore(new DataPosition(0, 99)));
        Assert.NotEqual(first.Fingerprint, new Batcher(s, 3, 8, 0, seed: 12).Fingerprint);
    }

    [Fact]
    public void GroupByLength_SortsEachMegaBatchLongestFirst()
    {
        var s = Samples(400, 30);
        var plain = new Batcher(s, 2, 32, 0, 5);
        var grouped = new Batcher(s, 2, 32, 0, 5, groupByLength: true);
        var order = grouped.Order(0);
        int mega = 2 * Batcher.GroupMegaBatches;
        for (int start = 0; start < order.Count; start += mega)
        {
            var lens = order.Skip(start).Take(mega).Select(i => s[i].Length).ToList();
            Assert.Equal(lens.OrderByDescending(x => x), lens);
        }
        long Padded(Batcher b) => b.EpochBatches(0).Sum(x => (long)x.B * x.T);
        Assert.True(Padded(grouped) < Padded(plain));
    }

    [Fact]
    public void PackedBatch_ConcatenatesWithoutPadding_PositionsRestart_BoundaryTargetsIgnored()
    {
        var s = new List<TrainingSample> { new([1, 5, 6], [1, 5, 6]), new([1, 7, 8, 9, 10], [-100, -100, 8, 9, 10]) };
        var b = new Batcher(s, microBatchSize: 2, cutoffLength: 8, padId: 0, seed: 3, shuffle: false, pack: true).NextBatch();
        Assert.Equal((1, 8), (b.B, b.T));
        Assert.Equal(new[] { 1, 5, 6, 1, 7, 8, 9, 10 }, b.InputIds);
        Assert.All(b.AttentionMask, m => Assert.Equal(1, m));
        Assert.Equal(new[] { 0, 0, 0, 1, 1, 1, 1, 1 }, b.SequenceIds);
        var pos = new int[8];
        b.PositionIds(pos);
        Assert.Equal(new[] { 0, 1, 2, 0, 1, 2, 3, 4 }, pos);
        var targets = new int[8];
        b.ShiftedTargets(targets);
        // Position 2 ends sample 0: its next token (BOS of sample 1) is not its target.
        Assert.Equal(new[] { 5, 6, -100, -100, 8, 9, 10, -100 }, targets);
        var padded = new Batcher(s, 2, 8, 0, 3, shuffle: false).NextBatch();
        Assert.Equal(padded.TargetCount, b.TargetCount);
        Assert.Throws<ArgumentException>(() => new Batcher(s, 2, 8, 0, 3, padToCutoff: true, pack: true));
    }

    [Fact]
    public void PackedBatches_HoldTheSameSamplesAndTargetsAsPadded_AndNoPadToken()
    {
        var s = Samples(41, 12);
        const int pad = 999;
        var padded = new Batcher(s, 4, 16, pad, seed: 9, groupByLength: true);
        var packed = new Batcher(s, 4, 16, pad, seed: 9, groupByLength: true, pack: true);
        Assert.True(packed.Packs);
        Assert.Equal(padded.StepsPerEpoch, packed.StepsPerEpoch);
        Assert.Equal(padded.Fingerprint, packed.Fingerprint);
        foreach (int epoch in new[] { 0, 1 })
            for (int i = 0; i < packed.StepsPerEpoch; i++)
            {
                var a = padded.BatchAt(epoch, i);
                var p = packed.BatchAt(epoch, i);
                Assert.Equal(1, p.B);
                Assert.DoesNotContain(pad, p.InputIds);
                Assert.True(p.T <= 4 * 16);
                // Row b of the padded batch, without its pads, is sequence b of the packed row.
                var expectedIds = Enumerable.Range(0, a.B).SelectMany(r => a.InputIds.Skip(r * a.T).Take(a.T).Where((_, t) => a.AttentionMask[r * a.T + t] != 0));
                Assert.Equal(expectedIds, p.InputIds);
                Assert.Equal(a.TargetCount, p.TargetCount);
                var ta = new int[a.B * a.T];
                var tp = new int[p.T];
                a.ShiftedTargets(ta);
                p.ShiftedTargets(tp);
                Assert.Equal(ta.Where(t => t != Batch.IgnoreIndex), tp.Where(t => t != Batch.IgnoreIndex));
                var pos = new int[p.T];
                p.PositionIds(pos);
                for (int t = 0; t < p.T; t++)
                    Assert.Equal(t == 0 || p.SequenceIds![t] != p.SequenceIds[t - 1] ? 0 : pos[t - 1] + 1, pos[t]);
            }
        Assert.True(padded.EpochBatches(0).Sum(x => (long)x.B * x.T) > packed.EpochBatches(0).Sum(x => (long)x.T));
    }

    [Fact]
    public void PackedBatcher_Restore_ContinuesWithTheIdenticalBatches()
    {
        var s = Samples(19, 8);
        var straight = new Batcher(s, 3, 8, 0, seed: 11, pack: true);
        var expected = Enumerable.Range(0, 25).Select(_ => straight.NextBatch()).ToList();
        var first = new Batcher(s, 3, 8, 0, seed: 11, pack: true);
        for (int i = 0; i < 10; i++) first.NextBatch();
        var resumed = new Batcher(s, 3, 8, 0, seed: 11, pack: true);
        resumed.Restore(first.Position);
        for (int i = 10; i < 25; i++)
        {
            var b = resumed.NextBatch();
            Assert.Equal(expected[i].InputIds, b.InputIds);
            Assert.Equal(expected[i].Labels, b.Labels);
            Assert.Equal(expected[i].SequenceIds, b.SequenceIds);
        }
    }

    [Fact]
    public void Batcher_BadInput_IsRefused()
    {
        Assert.Throws<DatasetException>(() => new Batcher([], 2, 8, 0, 1));
        Assert.Throws<ArgumentException>(() => new Batcher(Samples(3, 9), 2, 4, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Batcher(Samples(3, 4), 0, 8, 0, 1));
        Assert.Throws<ArgumentException>(() => new Batcher([new TrainingSample([1, 2], [1])], 1, 8, 0, 1));
        Assert.Equal(DataTestKit.Tok.EosTokenId, Batcher.ResolvePadId(DataTestKit.Tok));
    }
}
