// The unit of work handed to Threads.Run: a struct, so running it allocates nothing.
namespace LoraSharp.Core.Threading;

/// <summary>Work split statically into <c>parts</c> pieces; part p is executed exactly once, on some thread.</summary>
public interface IParallelWork
{
    /// <summary>Runs piece <paramref name="part"/> of <paramref name="parts"/>.</summary>
    void Execute(int part, int parts);
}
