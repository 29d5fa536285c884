// Perplexity of a token stream with a sliding window, as Hugging Face's perplexity guide and the
// text-generation-webui perplexity tab compute it: windows of max_length tokens advanced by stride; each window
// scores only its last (end - previous end) tokens; ppl = exp(mean over windows of the window's mean NLL).
using LoraSharp.Models.Llama;

namespace LoraSharp.Models.Evaluation;

/// <summary>The outcome of a perplexity evaluation.</summary>
/// <param name="Perplexity">exp(mean of per-window mean negative log-likelihoods), the webui/HF number.</param>
/// <param name="TokenWeightedPerplexity">exp(total NLL / scored tokens), the strict per-token perplexity.</param>
/// <param name="Windows">Number of windows evaluated.</param>
/// <param name="Tokens">Tokens in the text.</param>
/// <param name="ScoredTokens">Tokens that contributed a loss.</param>
public sealed record PerplexityResult(double Perplexity, double TokenWeightedPerplexity, int Windows, int Tokens, int ScoredTokens);

/// <summary>Sliding-window perplexity.</summary>
public static class Perplexity
{
    /// <summary>Evaluates <paramref name="ids"/> with windows of <paramref name="maxLength"/> tokens and <paramref name="stride"/>.</summary>
    public static PerplexityResult Evaluate(LlamaModel model, IReadOnlyList<int> ids, int maxLength, int stride, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        if (maxLength < 2) throw new Core.UserErrorException($"max length must be at least 2 tokens (is {maxLength}).");
        if (maxLength > model.Config.MaxPositionEmbeddings)
            throw new Core.UserErrorException($"max length {maxLength} exceeds the model's context of {model.Config.MaxPositionEmbeddings}.");
        if (stride <= 0 || stride > maxLength) throw new Core.UserErrorException($"stride must be in 1..{maxLength} (is {stride}).");
        if (ids.Count < 2) throw new Core.UserErrorException($"The text has {ids.Count} tokens; perplexity needs at least 2.");

        int n = ids.Count, prevEnd = 0, windows = 0, scored = 0;
        int total = (int)Math.Ceiling(Math.Max(1, n - maxLength) / (double)stride) + 1;
        double sumWindowMeans = 0, sumNll = 0;
        for (int begin = 0; begin < n; begin += stride)
        {
            cancel.ThrowIfCancellationRequested();
            int end = Math.Min(begin + maxLength, n);
            int trgLen = end - prevEnd, T = end - begin;
            var input = new int[T];
            var labels = new int[T];
            for (int t = 0; t < T; t++)
            {
                input[t] = ids[begin + t];
                labels[t] = t < T - trgLen ? Batch.IgnoreIndex : input[t];
            }
            var batch = new Batch(1, T, input, labels: labels);
            var losses = model.PositionLosses(batch, out int count);
            if (count > 0)
            {
                double s = 0;
                foreach (var l in losses) s += l;
                sumWindowMeans += s / count;
                sumNll += s;
                scored += count;
                windows++;
            }
            progress?.Invoke(windows, total);
            prevEnd = end;
            if (end == n) break;
        }
        return new PerplexityResult(Math.Exp(sumWindowMeans / windows), Math.Exp(sumNll / scored), windows, n, scored);
    }
}
