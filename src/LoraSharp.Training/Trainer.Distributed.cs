// The data-parallel part of the loop (issue 21): with more than one rank every rank draws the same micro-batches of a
// step (the Batcher is deterministic), computes the ones with index i % ranks == rank (the remainder goes to the low
// ranks), and one all-reduce of one flat float buffer sums the LoRA gradients of all ranks plus the step's loss sum
// (as a float pair hi + lo: ~1e-7 relative), a failure count and a stop request. The normalisation by the step's
// target tokens is the one-process one (every rank knows every micro-batch's targets), so after the sum every rank
// holds the gradient a single process would have computed (up to float summation order), clips and steps the same
// optimizer, and all adapters stay identical. The dropout stream of micro-batch i is (seed, step, i) as in one process.
// Evaluation splits its micro-batches the same way and sums (loss, tokens) in double.
// Not here: preference objectives (dpo/orpo run in one process), overlapping communication with the backward.
using System.Diagnostics;
using LoraSharp.Models.Llama;
using LoraSharp.Training.Data;
using LoraSharp.Training.Distributed;

namespace LoraSharp.Training;

public sealed partial class Trainer
{
    private ICommunicator _comm = SingleProcess.Instance;
    private float[]? _flat;
    private const int FlatExtras = 4;   // loss hi, loss lo, failed ranks, stop requests

    /// <summary>
    /// The ranks this run is split across (default: one process). Every rank must build the same Trainer (model, data,
    /// settings) and call the same methods; only preference-free (sft) runs can be split.
    /// </summary>
    public ICommunicator Communicator
    {
        get => _comm;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Size > 1 && _pref != null)
                throw new Core.UserErrorException($"objective {_s.Objective} runs in one process only; start it without mpirun (data-parallel training covers objective sft).");
            _comm = value;
        }
    }

    /// <summary>Bytes each rank sends into the all-reduce of one optimizer step (0 in one process).</summary>
    public long AllReduceBytesPerStep => _comm.Size > 1 ? 4L * (_parameters.Sum(p => (long)p.Length) + FlatExtras) : 0;

    /// <summary>Seconds spent in the step all-reduces so far (waiting for the slowest rank included).</summary>
    public double AllReduceSeconds { get; private set; }

    /// <summary>Step all-reduces done so far.</summary>
    public int AllReduceCount { get; private set; }

    // This rank's share of the micro-batches, then the one all-reduce; returns the step's loss sum over all ranks.
    private double DistributedMicroBatches(List<Batch> micro, float scale, CancellationToken cancel, out bool stop)
    {
        int rank = _comm.Rank, size = _comm.Size;
        double lossSum = 0;
        Exception? failure = null;
        try
        {
            Distributed.Communicator.InjectFault(_comm, Step + 1);
            for (int i = rank; i < micro.Count; i += size)
                lossSum += _model.ForwardBackward(micro[i], scale, Mix((ulong)_s.Seed, (ulong)Step, (ulong)i), out _);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure = e;
        }

        long n = _parameters.Sum(p => (long)p.Length);
        if (n + FlatExtras > Array.MaxLength) throw new Core.UserErrorException($"{n:N0} trainable parameters are too many for one all-reduce buffer; train fewer parameters per run.");
        var flat = _flat ??= new float[n + FlatExtras];
        int at = 0;
        foreach (var p in _parameters) { p.Grad.Floats.CopyTo(flat.AsSpan(at)); at += p.Length; }
        float hi = (float)lossSum;
        flat[at] = hi;
        flat[at + 1] = (float)(lossSum - hi);
        flat[at + 2] = failure != null ? 1 : 0;
        flat[at + 3] = cancel.IsCancellationRequested ? 1 : 0;

        long start = Stopwatch.GetTimestamp();
        _comm.AllReduceSum(flat);
        AllReduceSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        AllReduceCount++;

        if (flat[at + 2] > 0) Distributed.Communicator.Agree(_comm, failure, $"at step {Step + 1}");
        at = 0;
        foreach (var p in _parameters) { flat.AsSpan(at, p.Length).CopyTo(p.Grad.Floats); at += p.Length; }
        stop = flat[at + 3] > 0;
        return (double)flat[at] + flat[at + 1];
    }

    // Each rank evaluates micro-batches i % ranks == rank; (loss sum, tokens, failed) are summed in double.
    private double? EvaluateDistributed()
    {
        var batcher = new Batcher(_eval!, _s.MicroBatchSize, _s.CutoffLen, _padId, 0, shuffle: false, pack: true);
        double sum = 0;
        long count = 0;
        Exception? failure = null;
        try
        {
            for (int i = _comm.Rank; i < batcher.StepsPerEpoch; i += _comm.Size)
            {
                var losses = _model.PositionLosses(batcher.BatchAt(0, i), out int n);
                foreach (var l in losses) sum += l;
                count += n;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure = e;
        }
        Span<double> totals = [sum, count, failure != null ? 1 : 0];
        _comm.AllReduceSum(totals);
        if (totals[2] > 0) Distributed.Communicator.Agree(_comm, failure, "in evaluation");
        return totals[1] == 0 ? null : totals[0] / totals[1];
    }

    // Before the first step: every rank must stand at the same step and data position with the same data and adapter.
    private void CheckRanksAgree()
    {
        double checksum = 0;
        foreach (var p in _parameters)
            foreach (var v in p.Value.Floats) checksum += v;
        ulong fp = _batcher!.Fingerprint;
        var pos = DataPosition;
        Distributed.Communicator.AgreeSame(_comm, [Step, pos.Epoch, pos.Index, TotalSteps, fp >> 32, fp & 0xFFFFFFFF, checksum],
            "training state (step, data position, total steps, dataset fingerprint, adapter checksum)");
    }
}
