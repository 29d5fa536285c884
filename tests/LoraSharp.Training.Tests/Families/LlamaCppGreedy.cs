// Greedy decoding in llama.cpp (LLamaSharp 0.30.0 with its CPU backend, NuGet; tests only): the independent runtime
// that LoraSharp's own GGUF export must satisfy. One sequence, logits of the last token, arg-max; no sampling chain.
// Also llama.cpp's side of the GGUF LoRA format (an adapter file applied to a base) and of chat templates
// (llama_chat_apply_template with the file's tokenizer.chat_template).
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
    /// With <paramref name="lora"/>, llama.cpp applies that GGUF LoRA file (llama_adapter_lora_init, scale 1) to the base.
    /// </summary>
    public static (int[] Ids, List<float[]> Logits) Run(string gguf, IReadOnlyList<int> prompt, int steps, string? lora = null)
    {
        using var weights = Load(gguf, out var p);
        using var context = weights.CreateContext(p);
        if (lora != null)
        {
            LoraAdapter adapter;
            try
            {
                adapter = weights.NativeHandle.LoadLoraFromFile(lora);
            }
            catch (Exception e) when (e is InvalidOperationException or LLama.Exceptions.RuntimeError)
            {
                throw new InvalidOperationException($"llama.cpp could not load the LoRA {lora}: {Errors()}", e);
            }
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

    /// <summary>
    /// The chat prompt llama.cpp renders with <paramref name="gguf"/>'s own template (tokenizer.chat_template, through
    /// llama_chat_apply_template, which recognises the common templates by their markers), ending with the
    /// assistant's turn opened.
    /// </summary>
    public static string ApplyChatTemplate(string gguf, IReadOnlyList<(string Role, string Content)> messages)
    {
        using var weights = Load(gguf, out _);
        var template = new LLamaTemplate(weights, strict: true) { AddAssistant = true };
        foreach (var (role, content) in messages) template.Add(role, content);
        return System.Text.Encoding.UTF8.GetString(template.Apply());
    }

    private static LLamaWeights Load(string gguf, out ModelParams p)
    {
        if (s_native.Value is { } error)
            throw new InvalidOperationException($"llama.cpp (LLamaSharp.Backend.Cpu 0.30.0) did not load: {error}");
        p = new ModelParams(gguf) { ContextSize = 256, BatchSize = 256, UBatchSize = 256, Threads = 1, BatchThreads = 1, GpuLayerCount = 0,
            // llama.cpp keeps K and V in f16 by default (about 1e-3 off in the logits); f32 makes it an exact-arithmetic peer.
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false };
        lock (s_log) s_log.Clear();
        try
        {
            return LLamaWeights.LoadFromFile(p);
        }
        catch (LLama.Exceptions.LoadWeightsFailedException e)
        {
            throw new InvalidOperationException($"llama.cpp could not load {gguf}: {Errors()}", e);
        }
    }

    // The error lines llama.cpp logged since the last load.
    private static string Errors()
    {
        string log;
        lock (s_log) log = s_log.ToString();
        var lines = log.Split('\n').Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("failed", StringComparison.OrdinalIgnoreCase));
        return string.Join(" | ", lines);
    }
}
