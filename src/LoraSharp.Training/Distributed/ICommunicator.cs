// The communicator seam of data-parallel training: the few collectives a run needs (sum, max, broadcast, abort) over
// the ranks of one job. SingleProcess is the one-rank implementation (every call a no-op, so a one-process run pays
// nothing); MpiCommunicator binds Open MPI's C API. Trainer, FineTuneJob, the web UI and sweeps talk to this only.
// Contract: every rank calls the same collectives in the same order with the same lengths; results are identical on
// every rank. Not here: point-to-point messages, sub-communicators, non-blocking calls in the API.
namespace LoraSharp.Training.Distributed;

/// <summary>The ranks of one training job and the collectives between them.</summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank, 0..Size-1; rank 0 is the lead (it alone writes files and prints).</summary>
    int Rank { get; }

    /// <summary>The number of ranks.</summary>
    int Size { get; }

    /// <summary>Sums <paramref name="values"/> element-wise over all ranks, in place; every rank gets the same sums.</summary>
    void AllReduceSum(Span<float> values);

    /// <summary>Sums <paramref name="values"/> element-wise over all ranks, in place.</summary>
    void AllReduceSum(Span<double> values);

    /// <summary>The element-wise maximum of <paramref name="values"/> over all ranks, in place.</summary>
    void AllReduceMax(Span<double> values);

    /// <summary>Copies <paramref name="data"/> of rank <paramref name="root"/> into every rank's <paramref name="data"/> (same length everywhere).</summary>
    void Broadcast(Span<byte> data, int root);

    /// <summary>Ends every rank of the job now with <paramref name="exitCode"/> (after this rank has reported why).</summary>
    void Abort(int exitCode);
}
