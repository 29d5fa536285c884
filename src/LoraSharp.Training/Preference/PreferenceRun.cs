// The preference part of the training loop (Trainer keeps the optimizer, schedule, clipping, evaluation cadence,
// checkpoints): the pair order (shuffled per epoch from the seed, resumable by DataPosition like Batcher), micro-batches
// of micro_batch_size pairs packed into one row, the reference log-probabilities (DPO/IPO: the model with its adapters
// switched off, evaluation forward, computed once per pair and cached: the base never changes), and one optimizer
// step's forward/backward through LlamaModel.ForwardBackwardSequences. The step's loss is the mean over its pairs
// (ORPO's NLL: mean over the step's chosen tokens), so gradient accumulation gives the gradient of that mean.
using LoraSharp.Models.Llama;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Preference;

/// <summary>Means of one step's or one evaluation's preference metrics.</summary>
/// <param name="Loss">Mean loss.</param>
/// <param name="RewardsChosen">Mean chosen reward (β·(log p − log p_ref); ORPO: λ·mean token log p).</param>
/// <param name="RewardsRejected">Mean rejected reward.</param>
/// <param name="RewardsMargins">Mean chosen − rejected reward.</param>
/// <param name="RewardsAccuracies">Share of pairs whose chosen reward is larger.</param>
public sealed record PreferenceMetrics(double Loss, double RewardsChosen, double RewardsRejected, double RewardsMargins, double RewardsAccuracies)
{
    /// <summary>Means of summed values over their pairs.</summary>
    public static PreferenceMetrics From(PreferenceSums s) => new(s.Loss / s.Pairs, s.RewardChosen / s.Pairs, s.RewardRejected / s.Pairs,
        (s.RewardChosen - s.RewardRejected) / s.Pairs, s.Correct / s.Pairs);
}

/// <summary>Preference data order, reference cache and steps.</summary>
public sealed class PreferenceRun
{
    private readonly PreferenceSet _train;
    private readonly PreferenceSet? _eval;
    private readonly int _micro;
    private readonly ulong _seed;
    private readonly double[] _refChosen, _refRejected;
    private double[]? _evalRefChosen, _evalRefRejected;
    private int[]? _order;
    private int _orderEpoch = -1;

    /// <summary>Prepares a run over <paramref name="train"/> (and <paramref name="eval"/>) with <paramref name="settings"/>' objective.</summary>
    public PreferenceRun(PreferenceSet train, PreferenceSet? eval, TrainingSettings settings)
    {
        _train = train;
        _eval = eval is { Pairs.Count: > 0 } ? eval : null;
        _micro = settings.MicroBatchSize;
        _seed = (ulong)settings.Seed;
        Objective = PreferenceLoss.Parse(settings.Objective, settings.DpoLoss);
        Beta = Objective == PreferenceObjective.Orpo ? settings.OrpoLambda : settings.Beta;
        _refChosen = Enumerable.Repeat(double.NaN, train.Pairs.Count).ToArray();
        _refRejected = Enumerable.Repeat(double.NaN, train.Pairs.Count).ToArray();
        MicroBatchesPerEpoch = (train.Pairs.Count + _micro - 1) / _micro;
    }

    /// <summary>The loss.</summary>
    public PreferenceObjective Objective { get; }

    /// <summary>β (DPO, IPO) or λ (ORPO).</summary>
    public double Beta { get; }

    /// <summary>Micro-batches in one pass over the pairs.</summary>
    public int MicroBatchesPerEpoch { get; }

    /// <summary>Where the data stands.</summary>
    public DataPosition Position { get; private set; }

    /// <summary>Whether there are validation pairs.</summary>
    public bool HasEval => _eval != null;

    /// <summary>Continues from <paramref name="position"/>.</summary>
    public void Restore(DataPosition position) => Position = position;

    private int[] Order(int epoch)
    {
        if (_orderEpoch != epoch || _order == null)
        {
            _order = Enumerable.Range(0, _train.Pairs.Count).ToArray();
            DataRng.ForStream(_seed, (ulong)epoch).Shuffle(_order);
            _orderEpoch = epoch;
        }
        return _order;
    }

    private int[] NextMicroBatch()
    {
        var (epoch, index) = Position;
        if (index >= MicroBatchesPerEpoch) { epoch++; index = 0; }
        var order = Order(epoch);
        int start = index * _micro;
        var ids = order[start..Math.Min(order.Length, start + _micro)];
        Position = new DataPosition(epoch, index + 1);
        return ids;
    }

    /// <summary>
    /// One optimizer step's forward/backward over <paramref name="accumulation"/> micro-batches (gradients added; the
    /// caller zeroes them). <paramref name="seedOf"/> gives micro-batch i's dropout/noise seed. Returns the metrics.
    /// </summary>
    public PreferenceMetrics Step(LlamaModel model, int accumulation, Func<int, ulong> seedOf, out long tokens)
    {
        var micro = new List<int[]>(accumulation);
        for (int i = 0; i < accumulation; i++) micro.Add(NextMicroBatch());
        int pairs = micro.Sum(m => m.Length);
        long chosenTokens = micro.Sum(m => m.Sum(i => (long)_train.Pairs[i].Chosen.Length));
        double pairScale = 1.0 / pairs, tokenScale = 1.0 / Math.Max(1, chosenTokens);
        var total = new PreferenceSums();
        tokens = 0;
        for (int b = 0; b < micro.Count; b++)
        {
            var ids = micro[b];
            var batchPairs = ids.Select(i => _train.Pairs[i]).ToList();
            var batch = PreferencePair.PackedBatch(batchPairs);
            if (Objective != PreferenceObjective.Orpo) EnsureReference(model, _train, ids, _refChosen, _refRejected);
            PreferenceSums? sums = null;
            model.ForwardBackwardSequences(batch, seedOf(b), (lp, counts, grad) =>
                sums = Loss(lp, counts, grad, ids, _refChosen, _refRejected, pairScale, tokenScale));
            total.Add(sums!);
            tokens += batch.T;
        }
        return PreferenceMetrics.From(total);
    }

    /// <summary>Metrics over the validation pairs (evaluation forward; nothing trained), or null without them.</summary>
    public PreferenceMetrics? Evaluate(LlamaModel model)
    {
        if (_eval == null) return null;
        _evalRefChosen ??= Enumerable.Repeat(double.NaN, _eval.Pairs.Count).ToArray();
        _evalRefRejected ??= Enumerable.Repeat(double.NaN, _eval.Pairs.Count).ToArray();
        var total = new PreferenceSums();
        long chosenTokens = _eval.Pairs.Sum(p => (long)p.Chosen.Length);
        for (int start = 0; start < _eval.Pairs.Count; start += _micro)
        {
            var ids = Enumerable.Range(start, Math.Min(_micro, _eval.Pairs.Count - start)).ToArray();
            var batch = PreferencePair.PackedBatch(ids.Select(i => _eval.Pairs[i]).ToList());
            if (Objective != PreferenceObjective.Orpo) EnsureReference(model, _eval, ids, _evalRefChosen, _evalRefRejected);
            var lp = model.SequenceLogProbs(batch, out var counts);
            var grad = new double[lp.Length];
            total.Add(Loss(lp, counts, grad, ids, _evalRefChosen, _evalRefRejected, 1.0 / _eval.Pairs.Count, 1.0 / Math.Max(1, chosenTokens)));
        }
        return PreferenceMetrics.From(total);
    }

    // Reference log p (adapters off, evaluation forward) of the pairs not computed yet.
    private static void EnsureReference(LlamaModel model, PreferenceSet set, int[] ids, double[] refChosen, double[] refRejected)
    {
        var missing = ids.Where(i => double.IsNaN(refChosen[i])).ToArray();
        if (missing.Length == 0) return;
        var batch = PreferencePair.PackedBatch(missing.Select(i => set.Pairs[i]).ToList());
        double[] lp;
        using (model.AdaptersOff()) lp = model.SequenceLogProbs(batch, out _);
        for (int k = 0; k < missing.Length; k++)
        {
            refChosen[missing[k]] = lp[2 * k];
            refRejected[missing[k]] = lp[2 * k + 1];
        }
    }

    private PreferenceSums Loss(ReadOnlySpan<double> lp, ReadOnlySpan<int> counts, Span<double> grad, int[] ids, double[] refChosen, double[] refRejected,
        double pairScale, double tokenScale)
    {
        int P = ids.Length;
        var pc = new double[P];
        var pr = new double[P];
        var rc = new double[P];
        var rr = new double[P];
        var nc = new int[P];
        var nr = new int[P];
        for (int k = 0; k < P; k++)
        {
            pc[k] = lp[2 * k]; pr[k] = lp[2 * k + 1];
            nc[k] = counts[2 * k]; nr[k] = counts[2 * k + 1];
            rc[k] = refChosen[ids[k]]; rr[k] = refRejected[ids[k]];
        }
        var dc = new double[P];
        var dr = new double[P];
        var sums = PreferenceLoss.Compute(Objective, Beta, pc, pr, rc, rr, nc, nr, pairScale, tokenScale, dc, dr);
        for (int k = 0; k < P; k++) { grad[2 * k] = dc[k]; grad[2 * k + 1] = dr[k]; }
        return sums;
    }
}
