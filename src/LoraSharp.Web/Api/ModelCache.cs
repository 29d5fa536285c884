// The web UI's loaded model (generate tab, perplexity tool). Loading a model takes seconds (minutes for a large
// one), and a request often answers twice, without and with the adapter, so one base model stays loaded between
// requests; requests use it one at a time, each adapter attached for one answer and detached after. The model is
// loaded again when its file or any file in its folder changes (size or time), and let go when a training starts,
// to give that run the memory (the next request loads it again).
// Not here: generation and perplexity themselves (GenerateJob, PerplexityJob), the endpoints.
using LoraSharp.App;

namespace LoraSharp.Web.Api;

/// <summary>One loaded base model, shared by requests one at a time.</summary>
internal sealed class ModelCache : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ModelSession? _session;
    private string? _key;
    private volatile bool _dropAfterUse;

    /// <summary>Times a model was loaded (tests: a second request must not load again).</summary>
    public int Loads { get; private set; }

    /// <summary>Runs <paramref name="run"/> on <paramref name="model"/> with <paramref name="adapters"/> attached; waits for any other request first.</summary>
    public T Use<T>(string model, IReadOnlyList<AdapterSpec> adapters, Func<ModelSession, T> run, CancellationToken cancel)
    {
        _gate.Wait(cancel);
        try
        {
            string key = Key(model);
            if (_session == null || _key != key)
            {
                DisposeSession();
                _session = ModelSession.Open(model);
                _key = key;
                Loads++;
            }
            using (_session.AttachAdapters(adapters))
                return run(_session);
        }
        finally
        {
            if (_dropAfterUse)
            {
                _dropAfterUse = false;
                DisposeSession();
            }
            _gate.Release();
        }
    }

    /// <summary>Lets the model go now, or when the request using it ends.</summary>
    public void Drop()
    {
        if (_gate.Wait(0))
        {
            try { DisposeSession(); }
            finally { _gate.Release(); }
        }
        else
        {
            _dropAfterUse = true;
        }
    }

    /// <summary>Frees the model once no request uses it; one still running after 30 s keeps it (the process is ending).</summary>
    public void Dispose()
    {
        if (_gate.Wait(TimeSpan.FromSeconds(30))) DisposeSession();
    }

    private void DisposeSession()
    {
        _session?.Dispose();
        _session = null;
        _key = null;
    }

    // The full path with the size and write time of the file, or of every file in the folder (a Hugging Face folder
    // keeps its model files at the top; a cloned repository's .git below it may hold thousands).
    private static string Key(string path)
    {
        string full = Path.GetFullPath(path);
        IEnumerable<FileInfo> files = File.Exists(full)
            ? [new FileInfo(full)]
            : new DirectoryInfo(full).EnumerateFiles("*", SearchOption.TopDirectoryOnly).OrderBy(f => f.FullName, StringComparer.Ordinal);
        return full + "|" + string.Join("|", files.Select(f => $"{f.Name}:{f.Length}:{f.LastWriteTimeUtc.Ticks}"));
    }
}
