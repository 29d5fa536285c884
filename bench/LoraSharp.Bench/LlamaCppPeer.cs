// llama.cpp in this process (LLamaSharp 0.30.0 and its CPU backend), as the same-run peer of `bench generate`.
// LLamaSharp picks the native build for the CPU (avx512, avx2, avx or noavx under runtimes/<rid>/native) and falls
// back to a lower one when a build does not load. Only the low-level API is used: llama_decode on a batch of token
// ids and the logits it leaves, so neither sampling nor detokenisation is timed. Configuration: the file mmapped,
// flash attention left to llama.cpp's default (auto), generation and batch threads = LoraSharp's compute threads,
// n_batch = n_ubatch = the prefill length so a prompt runs as one graph. Native log lines are kept (not printed) so
// the bench can show what llama.cpp chose (flash attention, CPU features). Not here: what is measured or printed.
using System.Runtime.InteropServices;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LoraSharp.Bench;

/// <summary>One GGUF file loaded in llama.cpp, with a decode context and a prefill context.</summary>
public sealed class LlamaCppPeer : IDisposable
{
    private static readonly StringBuilder s_log = new();
    private static string? s_loadError;
    private static bool s_loaded;

    private readonly LLamaWeights _weights;
    private readonly LLamaContext _decode, _prefill;
    private readonly LLamaBatch _batch = new();

    /// <summary>Loads the native library once; null when it loaded, else what went wrong (for a note in the output).</summary>
    public static string? TryLoadNative()
    {
        // The packed `lorasharp` tool leaves LLamaSharp out (docs/packaging.md); touching its types would throw.
        try { System.Reflection.Assembly.Load(new System.Reflection.AssemblyName("LLamaSharp")); }
        catch (FileNotFoundException)
        {
            return "LLamaSharp is not installed beside this program (the packed lorasharp tool leaves llama.cpp out; " +
                   "run `dotnet run --project src/LoraSharp.Cli -c Release -- bench generate` in a source checkout for its numbers)";
        }
        return LoadNative();
    }

    // Separate and not inlined: its body names LLamaSharp types, so it is compiled only once LLamaSharp is known to load.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static string? LoadNative()
    {
        lock (s_log)
        {
            if (s_loaded || s_loadError != null) return s_loadError;
            try
            {
                NativeLibraryConfig.All.WithAutoFallback(true).WithLogCallback((level, message) =>
                {
                    lock (s_log) s_log.Append(message);
                });
                NativeApi.llama_empty_call();   // loads libllama (and libggml*) now, not inside the first timed call
                s_loaded = true;
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or LLama.Exceptions.RuntimeError or EntryPointNotFoundException or BadImageFormatException or InvalidOperationException)
            {
                s_loadError = $"{e.GetType().Name}: {(e.InnerException ?? e).Message}";
            }
            return s_loadError;
        }
    }

    /// <summary>llama.cpp's system info line (the CPU features its ggml build uses), once the library is loaded.</summary>
    public static string SystemInfo() => Marshal.PtrToStringAnsi(NativeApi.llama_print_system_info())?.Trim() ?? "";

    /// <summary>The LLamaSharp package version (its assembly carries none; keep in step with Directory.Packages.props).</summary>
    public const string PackageVersion = "0.30.0";

    /// <summary>What the contexts run with, as llama.cpp reports it.</summary>
    public string Describe() =>
        $"threads {_decode.NativeHandle.GenerationThreads} (batch {_decode.NativeHandle.BatchThreads}); decode context {_decode.NativeHandle.ContextSize} positions; " +
        $"prefill context {_prefill.NativeHandle.ContextSize} positions, n_batch {_prefill.NativeHandle.BatchSize}, n_ubatch {_prefill.NativeHandle.UBatchSize}, " +
        $"threads {_prefill.NativeHandle.GenerationThreads} (batch {_prefill.NativeHandle.BatchThreads}); mmap {(NativeApi.llama_supports_mmap() ? "on" : "unsupported")}";

    /// <summary>Native log lines containing any of <paramref name="keys"/> (what llama.cpp decided while loading).</summary>
    public static IEnumerable<string> LogLines(params string[] keys)
    {
        string all;
        lock (s_log) all = s_log.ToString();
        return all.Split('\n').Select(l => l.Trim()).Where(l => keys.Any(k => l.Contains(k, StringComparison.Ordinal))).Distinct();
    }

    /// <summary>Loads <paramref name="ggufPath"/> with contexts for decode (<paramref name="decodeContext"/> positions) and prefill (<paramref name="prefill"/> tokens at once).</summary>
    public LlamaCppPeer(string ggufPath, int threads, int decodeContext, int prefill)
    {
        _weights = LLamaWeights.LoadFromFile(Params(ggufPath, threads, decodeContext, 512));
        try
        {
            _decode = _weights.CreateContext(Params(ggufPath, threads, decodeContext, 512));
            _prefill = _weights.CreateContext(Params(ggufPath, threads, prefill, prefill));
        }
        catch
        {
            _decode?.Dispose();
            _weights.Dispose();
            throw;
        }
        VocabSize = _weights.Vocab.Count;
    }

    private static ModelParams Params(string path, int threads, int context, int batch) => new(path)
    {
        ContextSize = (uint)context,
        BatchSize = (uint)batch,
        UBatchSize = (uint)batch,
        Threads = threads,
        BatchThreads = threads,
        GpuLayerCount = 0,
        LoadMode = LLamaLoadMode.MemoryMap,
        FlashAttention = null,   // llama.cpp's default (auto)
    };

    /// <summary>The vocabulary size llama.cpp read.</summary>
    public int VocabSize { get; }

    /// <summary>Decodes <paramref name="token"/> at <paramref name="position"/> of the decode sequence; returns the arg-max of its logits [V].</summary>
    public int DecodeStep(int token, int position)
    {
        _batch.Clear();
        _batch.Add((LLamaToken)token, (LLamaPos)position, (LLamaSeqId)0, true);
        Check(_decode.NativeHandle.Decode(_batch));
        return Models.Generation.Sampler.ArgMax(_decode.NativeHandle.GetLogitsIth(0));
    }

    /// <summary>Clears the prefill context and runs <paramref name="tokens"/> as one batch (logits of the last only); returns their arg-max.</summary>
    public int Prefill(ReadOnlySpan<int> tokens)
    {
        _prefill.NativeHandle.MemoryClear(true);
        _batch.Clear();
        for (int i = 0; i < tokens.Length; i++) _batch.Add((LLamaToken)tokens[i], (LLamaPos)i, (LLamaSeqId)0, i == tokens.Length - 1);
        Check(_prefill.NativeHandle.Decode(_batch));
        return Models.Generation.Sampler.ArgMax(_prefill.NativeHandle.GetLogitsIth(tokens.Length - 1));
    }

    private static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {r}.");
    }

    public void Dispose()
    {
        _prefill.Dispose();
        _decode.Dispose();
        _weights.Dispose();
    }
}
