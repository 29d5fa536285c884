// Turns samples into micro-batches for the model: each epoch visits every sample once in an order that depends
// only on (seed, epoch), so a saved DataPosition restores the exact batch sequence. Two layouts of the same
// micro-batch (the same samples, so positions and resume are the same in both):
// - padded: sequences right-padded to the longest in the batch (or to cutoff_len) with the pad id; the attention
//   mask is 1 on real tokens and labels are -100 on padding. B rows x T positions are computed, pads included.
// - packed: the samples concatenated into one row (B = 1, T = the sum of their lengths, no pad token) with
//   sequence ids, so each sample attends only to itself, its positions restart at 0 and the token after its last
//   is not its target: the loss and gradients are those of the padded batch (and of the samples one by one), and
//   the tokens computed are at most micro_batch_size x cutoff_len as before.
// Optional length grouping (Hugging Face group_by_length): after the shuffle, every run of 50 micro-batches' worth
// of samples is sorted by length, longest first, so batches hold similar lengths and pad less.
// Not thread-safe. Samples are not copied; do not change them while a Batcher uses them.
using LoraSharp.Models.Llama;
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Deterministic, resumable micro-batches over a fixed list of samples.</summary>
public sealed class Batcher
{
    /// <summary>Micro-batches per length-grouping run (Hugging Face's LengthGroupedSampler mega-batch factor).</summary>
    public const int GroupMegaBatches = 50;

    private readonly IReadOnlyList<TrainingSample> _samples;
    private readonly int _microBatch, _cutoff, _padId;
    private readonly ulong _seed;
    private readonly bool _shuffle, _group, _padToCutoff, _pack;
    private int[] _order = [];
    private int _orderEpoch = -1;
    private ulong? _fingerprint;

    /// <summary>Creates a batcher.</summary>
    /// <param name="samples">The samples (each at most <paramref name="cutoffLength"/> tokens and not empty).</param>
    /// <param name="microBatchSize">Sequences per micro-batch (B).</param>
    /// <param name="cutoffLength">Longest sequence (T at most).</param>
    /// <param name="padId">Id written into padding (see <see cref="ResolvePadId"/>); masked and never trained.</param>
    /// <param name="seed">Seed of the per-epoch shuffles.</param>
    /// <param name="shuffle">Shuffle each epoch; false keeps the sample order (evaluation).</param>
    /// <param name="groupByLength">Group similar lengths into the same batches after shuffling.</param>
    /// <param name="padToCutoff">Pad every batch to cutoffLength instead of its longest sequence (fixed T).</param>
    /// <param name="dropLast">Leave out an epoch's last micro-batch when it is smaller than the others.</param>
    /// <param name="pack">Concatenate each micro-batch's samples into one row with sequence ids (no padding); excludes <paramref name="padToCutoff"/>.</param>
    public Batcher(IReadOnlyList<TrainingSample> samples, int microBatchSize, int cutoffLength, int padId, ulong seed,
        bool shuffle = true, bool groupByLength = false, bool padToCutoff = false, bool dropLast = false, bool pack = false)
    {
        if (pack && padToCutoff)
            throw new ArgumentException("A batcher either packs micro-batches (no padding at all) or pads them to cutoff_len (a fixed T), not both.", nameof(pack));
        ArgumentNullException.ThrowIfNull(samples);
        if (microBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(microBatchSize), $"micro_batch_size is {microBatchSize}; it must be at least 1.");
        if (cutoffLength < 1) throw new ArgumentOutOfRangeException(nameof(cutoffLength), $"cutoff_len is {cutoffLength}; it must be at least 1.");
        if (samples.Count == 0) throw new DatasetException("There are no samples to batch; the dataset is empty.");
        for (int i = 0; i < samples.Count; i++)
        {
            samples[i].Validate(i);
            if (samples[i].Length == 0) throw new ArgumentException($"Sample {i} is empty.", nameof(samples));
            if (samples[i].Length > cutoffLength)
                throw new ArgumentException($"Sample {i} has {samples[i].Length} tokens, more than cutoff_len {cutoffLength}; build the dataset with the same cutoff.", nameof(samples));
        }
        _samples = samples;
        _microBatch = microBatchSize;
        _cutoff = cutoffLength;
        _padId = padId < 0 ? 0 : padId;
        _seed = seed;
        _shuffle = shuffle;
        _group = groupByLength;
        _padToCutoff = padToCutoff;
        _pack = pack;
        StepsPerEpoch = dropLast ? samples.Count / microBatchSize : (samples.Count + microBatchSize - 1) / microBatchSize;
        if (StepsPerEpoch == 0)
            throw new ArgumentException($"With drop_last, {samples.Count} sample(s) make no full micro-batch of {microBatchSize}; lower micro_batch_size or turn drop_last off.", nameof(samples));
    }

    /// <summary>Micro-batches per epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Number of samples.</summary>
    public int SampleCount => _samples.Count;

    /// <summary>Sequences per micro-batch.</summary>
    public int MicroBatchSize => _microBatch;

    /// <summary>True when micro-batches are packed into one row with sequence ids instead of padded.</summary>
    public bool Packs => _pack;

    /// <summary>The next micro-batch <see cref="NextBatch"/> returns.</summary>
    public DataPosition Position { get; private set; }

    /// <summary>
    /// A hash of the samples (lengths, ids, labels), micro-batch size and seed: store it with a checkpoint and compare
    /// on resume to refuse a position that belongs to other data.
    /// </summary>
    public ulong Fingerprint => _fingerprint ??= ComputeFingerprint();

    /// <summary>The pad id for a tokenizer: its pad token, else EOS, else 0.</summary>
    public static int ResolvePadId(Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.PadTokenId >= 0 ? tokenizer.PadTokenId : tokenizer.EosTokenId >= 0 ? tokenizer.EosTokenId : 0;
    }

    /// <summary>Returns the micro-batch at <see cref="Position"/> and advances (to the next epoch after the last one).</summary>
    public Batch NextBatch()
    {
        var p = Position;
        var batch = BatchAt(p.Epoch, p.Index);
        Position = p.Index + 1 >= StepsPerEpoch ? new DataPosition(p.Epoch + 1, 0) : p with { Index = p.Index + 1 };
        return batch;
    }

    /// <summary>Moves the cursor to a saved position (index == StepsPerEpoch means the start of the next epoch).</summary>
    public void Restore(DataPosition position)
    {
        if (position.Epoch < 0 || position.Index < 0 || position.Index > StepsPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(position),
                $"Data position (epoch {position.Epoch}, index {position.Index}) is outside this dataset's {StepsPerEpoch} micro-batches per epoch; was the checkpoint made with other data or another micro-batch size?");
        Position = position.Index == StepsPerEpoch ? new DataPosition(position.Epoch + 1, 0) : position;
    }

    /// <summary>Every micro-batch of one epoch, in order, without moving the cursor (evaluation passes).</summary>
    public IEnumerable<Batch> EpochBatches(int epoch = 0)
    {
        for (int i = 0; i < StepsPerEpoch; i++) yield return BatchAt(epoch, i);
    }

    /// <summary>The sample indices of an epoch in visiting order.</summary>
    public IReadOnlyList<int> Order(int epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), $"Epoch {epoch} is negative.");
        if (_orderEpoch != epoch)
        {
            _order = MakeOrder(epoch);
            _orderEpoch = epoch;
        }
        return _order;
    }

    /// <summary>The micro-batch <paramref name="index"/> of <paramref name="epoch"/>.</summary>
    public Batch BatchAt(int epoch, int index)
    {
        if ((uint)index >= (uint)StepsPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(index), $"Micro-batch {index} is outside 0..{StepsPerEpoch - 1}.");
        var order = Order(epoch);
        int first = index * _microBatch;
        int B = Math.Min(_microBatch, _samples.Count - first);
        if (_pack) return Packed(order, first, B);
        int T = 1;
        if (_padToCutoff) T = _cutoff;
        else for (int b = 0; b < B; b++) T = Math.Max(T, _samples[order[first + b]].Length);
        var ids = new int[B * T];
        var mask = new byte[B * T];
        var labels = new int[B * T];
        Array.Fill(ids, _padId);
        Array.Fill(labels, Batch.IgnoreIndex);
        for (int b = 0; b < B; b++)
        {
            var s = _samples[order[first + b]];
            s.InputIds.CopyTo(ids, b * T);
            s.Labels.CopyTo(labels, b * T);
            mask.AsSpan(b * T, s.Length).Fill(1);
        }
        return new Batch(B, T, ids, mask, labels);
    }

    // The n samples from order[first] in one row: B = 1, T = the sum of their lengths, sequence id b for sample b.
    private Batch Packed(IReadOnlyList<int> order, int first, int n)
    {
        int T = 0;
        for (int b = 0; b < n; b++) T += _samples[order[first + b]].Length;
        var ids = new int[T];
        var labels = new int[T];
        var seq = new int[T];
        int t = 0;
        for (int b = 0; b < n; b++)
        {
            var s = _samples[order[first + b]];
            s.InputIds.CopyTo(ids, t);
            s.Labels.CopyTo(labels, t);
            seq.AsSpan(t, s.Length).Fill(b);
            t += s.Length;
        }
        return new Batch(1, T, ids, labels: labels, sequenceIds: seq);
    }

    private int[] MakeOrder(int epoch)
    {
        var order = new int[_samples.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (!_shuffle) return order;
        DataRng.ForStream(_seed, (ulong)epoch).Shuffle(order);
        if (_group)
        {
            int mega = _microBatch * GroupMegaBatches;
            for (int start = 0; start < order.Length; start += mega)
            {
                int n = Math.Min(mega, order.Length - start);
                var sorted = order.AsSpan(start, n).ToArray().OrderByDescending(i => _samples[i].Length).ToArray(); // stable
                sorted.CopyTo(order, start);
            }
        }
        return order;
    }

    private ulong ComputeFingerprint()
    {
        const ulong prime = 0x100000001B3UL;
        ulong h = 0xCBF29CE484222325UL;
        void Add(long v) { h = (h ^ (ulong)v) * prime; }
        Add(_samples.Count);
        Add(_microBatch);
        Add((long)_seed);
        foreach (var s in _samples)
        {
            Add(s.Length);
            foreach (int id in s.InputIds) Add(id);
            foreach (int l in s.Labels) Add(l);
        }
        return h;
    }
}
