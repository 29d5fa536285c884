// How long-running use cases (training, merging, benchmarks) report progress to whatever draws it (CLI, Web).
namespace LoraSharp.App.Progress;

/// <summary>Receives progress of one long-running task.</summary>
public interface IProgressSink
{
    /// <summary>Sets the total amount of work (steps, bytes, ...); may be called again if it changes.</summary>
    void SetTotal(long total);

    /// <summary>Reports <paramref name="done"/> of the total with a one-line status.</summary>
    void Report(long done, string status);

    /// <summary>Prints a line of text that stays (not overwritten by the next report).</summary>
    void Log(string line);
}
