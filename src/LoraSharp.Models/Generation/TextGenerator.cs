// Autoregressive text generation with a KV cache: encode the prompt, prefill, then sample token by token,
// streaming text as it becomes valid UTF-8, stopping at EOS, a stop string or the token limit.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using LoraSharp.Models.Llama;
using LoraSharp.Tokenizers;

namespace LoraSharp.Models.Generation;

/// <summary>The result of a finished generation.</summary>
/// <param name="Text">Generated text (without the prompt, without a matched stop string).</param>
/// <param name="TokenIds">Prompt ids followed by generated ids.</param>
/// <param name="PromptTokens">How many of <paramref name="TokenIds"/> are the prompt.</param>
/// <param name="StopReason">"eos", "stop_string" or "length".</param>
/// <param name="TokensPerSecond">Decode speed (generated tokens / decode time, prefill excluded).</param>
public sealed record GenerationResult(string Text, int[] TokenIds, int PromptTokens, string StopReason, double TokensPerSecond);

/// <summary>Generates text from a model and its tokenizer.</summary>
public sealed class TextGenerator(LlamaModel model, Tokenizer tokenizer)
{
    /// <summary>Generates to completion; <paramref name="onText"/> receives each new piece of text as it is decoded.</summary>
    public GenerationResult Generate(string prompt, GenerationOptions options, Action<string>? onText = null, CancellationToken cancel = default)
    {
        var ids = tokenizer.EncodeToIds(prompt, options.AddSpecialTokens).ToList();
        return Generate(ids, options, onText, cancel);
    }

    /// <summary>Generates from prompt token ids.</summary>
    public GenerationResult Generate(IReadOnlyList<int> promptIds, GenerationOptions options, Action<string>? onText = null, CancellationToken cancel = default)
    {
        var ids = promptIds.ToList();
        int context = model.Config.MaxPositionEmbeddings;
        if (ids.Count == 0) ids.Add(tokenizer.BosTokenId >= 0 ? tokenizer.BosTokenId : 0);
        if (ids.Count >= context)
            throw new Core.UserErrorException($"The prompt has {ids.Count} tokens but the model's context is {context}; shorten the prompt.");
        int promptCount = ids.Count;
        int capacity = Math.Min(context, promptCount + options.MaxNewTokens);
        var cache = model.CreateCache(capacity);
        var sampler = new Sampler(options.Sampling);
        var logits = model.ForwardCached(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids), cache);

        string emitted = "";
        string reason = "length";
        // Decode prompt + generated ids together and cut the prompt's text off, so word boundaries (SentencePiece's
        // leading space) come out as they would in the full text.
        string promptText = tokenizer.Decode(ids, skipSpecialTokens: true);
        string GeneratedText()
        {
            string all = tokenizer.Decode(ids.Where(i => i != tokenizer.EosTokenId), skipSpecialTokens: true);
            return all.StartsWith(promptText, StringComparison.Ordinal)
                ? all[promptText.Length..]
                : tokenizer.Decode(ids.Skip(promptCount).Where(i => i != tokenizer.EosTokenId), skipSpecialTokens: true);
        }
        var clock = Stopwatch.StartNew();
        int generated = 0;
        while (generated < options.MaxNewTokens)
        {
            cancel.ThrowIfCancellationRequested();
            int next = sampler.Next(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids));
            ids.Add(next);
            generated++;
            if (options.StopAtEos && next == tokenizer.EosTokenId) { reason = "eos"; break; }

            string text = GeneratedText();
            int stopAt = FindStop(text, options.StopStrings);
            if (stopAt >= 0)
            {
                Emit(text[..stopAt]);
                reason = "stop_string";
                break;
            }
            // Hold back a trailing replacement character: the next token may complete the UTF-8 sequence.
            Emit(text.EndsWith('\uFFFD') ? text[..^1] : text);
            if (generated == options.MaxNewTokens || cache.Length >= capacity) break;
            logits = model.ForwardCached([next], cache);
        }
        if (reason != "stop_string") Emit(GeneratedText());
        double tps = generated / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        return new GenerationResult(emitted, [.. ids], promptCount, reason, tps);

        void Emit(string text)
        {
            if (text.Length > emitted.Length && text.StartsWith(emitted, StringComparison.Ordinal))
            {
                onText?.Invoke(text[emitted.Length..]);
                emitted = text;
            }
            else if (text.Length < emitted.Length || !text.StartsWith(emitted, StringComparison.Ordinal))
            {
                emitted = text;   // decoding changed earlier text (rare: merged bytes); keep the final form
            }
        }
    }

    private static int FindStop(string text, IReadOnlyList<string> stops)
    {
        int best = -1;
        foreach (var s in stops)
        {
            if (string.IsNullOrEmpty(s)) continue;
            int i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }
}
