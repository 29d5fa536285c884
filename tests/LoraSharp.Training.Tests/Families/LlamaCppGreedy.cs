// Greedy decoding in llama.cpp (LLamaSharp 0.30.0 with its CPU backend, NuGet; tests only): the independent runtime
// that LoraSharp's own GGUF export must satisfy. One sequence, logits of the last token, arg-max; no sampling chain.
using LLama;
using LLama.Common;
using LLama.Native;

namespace LoraSharp.Training.Tests.Families;

internal static class LlamaCppGreedy
{
    private static readonly System.Text.StringBuilder s_log = new();

    private static readonly Lazy<string?> s_native = new(() =>
    {
        try
        {
            NativeLibraryConfig.All.WithAutoFallback(true).WithLogCallback((_, message) => { lock (s_log) s_log.Append(message); });
            NativeApi.llama_empty_call();
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or LLama.Exceptions.RuntimeError or EntryPointNotFoundException or BadImageFormatException or InvalidOperationException)
        {
            return $"{e.GetType().Name}: {(e.InnerException ?? e).Message}";
        }
    });

    /// <summary>
    /// The prompt followed by <paramref name="steps"/> greedy tokens, as llama.cpp runs <paramref name="gguf"/>, and the
    /// logits [V] llama.cpp computed at every position but the last (prompt positions, then each decoded token's).
    /// With <paramref name="lora"/>, llama.cpp applies that GGUF LoRA adapter (scale 1) to the model.
    /// </summary>
    public static (int[] Ids, List<float[]> Logits) Run(string gguf, IReadOnlyList<int> prompt, int steps, string? lora = null)
    {
        if (s_native.Value is { } error)
            throw new InvalidOperationException($"llama.cpp (LLamaSharp.Backend.Cpu 0.30.0) did not load: {error}");
        var p = new ModelParams(gguf) { ContextSize = 256, BatchSize = 256, UBatchSize = 256, Threads = 1, BatchThreads = 1, GpuLayerCount = 0,
            // llama.cpp keeps K and V in f16 by default (about 1e-3 off in the logits); f32 makes it an exact-arithmetic peer.
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false };
        lock (s_log) s_log.Clear();
        LLamaWeights weights;
        try
        {
            weights = LLamaWeights.LoadFromFile(p);
        }
        catch (LLama.Exceptions.LoadWeightsFailedException e)
        {
            string log;
            lock (s_log) log = s_log.ToString();
            var lines = log.Split('\n').Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("failed", StringComparison.OrdinalIgnoreCase));
            throw new InvalidOperationException($"llama.cpp could not load {gguf}: {string.Join(" | ", lines)}", e);
        }
        using var _ = weights;
        using var context = weights.CreateContext(p);
        if (lora != null)
        {
            var adapter = weights.NativeHandle.LoadLoraFromFile(lora);   // throws InvalidOperationException when llama.cpp refuses it
            context.NativeHandle.SetLoraAdapters([(adapter, 1f)]);
        }
        var batch = new LLamaBatch();
        var ids = new List<int>(prompt);
        var logits = new List<float[]>();
        for (int i = 0; i < prompt.Count; i++) batch.Add((LLamaToken)prompt[i], (LLamaPos)i, (LLamaSeqId)0, true);
        for (int s = 0; s < steps; s++)
        {
            var r = context.NativeHandle.Decode(batch);
            if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {r} at step {s}.");
            for (int i = 0; i < batch.TokenCount; i++) logits.Add(context.NativeHandle.GetLogitsIth(i).ToArray());
            int next = Models.Generation.Sampler.ArgMax(logits[^1]);
            ids.Add(next);
            batch.Clear();
            batch.Add((LLamaToken)next, (LLamaPos)(ids.Count - 1), (LLamaSeqId)0, true);
        }
        return ([.. ids], logits);
    }
}
