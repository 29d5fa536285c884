// The one-rank communicator: a sum over one rank is the value itself, so every collective returns at once and a
// one-process run does no copy, no allocation and no native call.
namespace LoraSharp.Training.Distributed;

/// <summary>One process, one rank.</summary>
public sealed class SingleProcess : ICommunicator
{
    /// <summary>The shared instance.</summary>
    public static SingleProcess Instance { get; } = new();

    private SingleProcess()
    {
    }

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int Size => 1;

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values)
    {
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values)
    {
    }

    /// <inheritdoc/>
    public void AllReduceMax(Span<double> values)
    {
    }

    /// <inheritdoc/>
    public void Broadcast(Span<byte> data, int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), $"Rank {root} does not exist in a one-process run.");
    }

    /// <inheritdoc/>
    public void Abort(int exitCode) => Environment.Exit(exitCode);

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
