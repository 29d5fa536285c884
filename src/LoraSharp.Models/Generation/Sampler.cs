// Picks the next token from logits: repetition penalty, then temperature, top-k, top-p and min-p filtering
// (the order of Hugging Face's logits processors), then a seeded draw. Greedy when temperature is 0.
namespace LoraSharp.Models.Generation;

/// <summary>A seeded next-token sampler; reuses its buffers between calls.</summary>
public sealed class Sampler
{
    private readonly SamplingSettings _settings;
    private readonly Random _random;
    private float[] _work = [];
    private int[] _order = [];

    /// <summary>Creates a sampler; the same settings and seed give the same tokens.</summary>
    public Sampler(SamplingSettings settings)
    {
        settings.Validate();
        _settings = settings;
        _random = new Random(settings.Seed);
    }

    /// <summary>The next token given the logits [V] and the tokens so far (for the repetition penalty).</summary>
    public int Next(ReadOnlySpan<float> logits, ReadOnlySpan<int> previous)
    {
        int V = logits.Length;
        if (_work.Length != V) { _work = new float[V]; _order = new int[V]; }
        var x = _work;
        logits.CopyTo(x);
        var s = _settings;
        if (s.RepetitionPenalty != 1f)
            foreach (int id in previous)
                if ((uint)id < (uint)V) x[id] = x[id] > 0 ? x[id] / s.RepetitionPenalty : x[id] * s.RepetitionPenalty;
        if (s.Temperature == 0f) return ArgMax(x);

        for (int i = 0; i < V; i++) x[i] /= s.Temperature;
        // Sort ids by logit, descending, then cut by top-k, top-p, min-p.
        for (int i = 0; i < V; i++) _order[i] = i;
        Array.Sort(_order, (a, b) => x[b].CompareTo(x[a]));
        int keep = s.TopK > 0 ? Math.Min(s.TopK, V) : V;
        double max = x[_order[0]], sum = 0;
        var probs = new double[keep];
        for (int i = 0; i < keep; i++) { probs[i] = Math.Exp(x[_order[i]] - max); sum += probs[i]; }
        for (int i = 0; i < keep; i++) probs[i] /= sum;
        if (s.TopP < 1f)
        {
            double cum = 0;
            int k = 0;
            while (k < keep) { cum += probs[k++]; if (cum >= s.TopP) break; }
            keep = Math.Max(1, k);
        }
        if (s.MinP > 0f)
        {
            double floor = s.MinP * probs[0];
            int k = 1;
            while (k < keep && probs[k] >= floor) k++;
            keep = k;
        }
        double total = 0;
        for (int i = 0; i < keep; i++) total += probs[i];
        double r = _random.NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            r -= probs[i];
            if (r <= 0) return _order[i];
        }
        return _order[keep - 1];
    }

    /// <summary>Index of the largest value (the first one on ties, as torch.argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++)
            if (x[i] > x[best]) best = i;
        return best;
    }
}
