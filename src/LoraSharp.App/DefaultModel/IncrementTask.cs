// The narrow skill the default fine-tune teaches: "Q: What number comes after 47?\nA: 48". Numbers 0..98 are split
// (seeded) into training and held-out questions; the metric is exact match of the greedy answer on held-out ones.
using LoraSharp.Models.Generation;

namespace LoraSharp.App.DefaultModel;

/// <summary>The "what comes after N" task: data and exact-match evaluation.</summary>
public static class IncrementTask
{
    /// <summary>The prompt for <paramref name="n"/> (the answer follows it).</summary>
    public static string Prompt(int n) => $"Q: What number comes after {n}?\nA:";

    /// <summary>The expected answer text (after the prompt).</summary>
    public static string Answer(int n) => $" {n + 1}";

    /// <summary>Training and held-out numbers (every number 0..98 in exactly one of them).</summary>
    public static (int[] Train, int[] HeldOut) Split(int heldOut, int seed)
    {
        var all = Enumerable.Range(0, 99).ToArray();
        new Random(seed).Shuffle(all);
        return (all[heldOut..].Order().ToArray(), all[..heldOut].Order().ToArray());
    }

    /// <summary>The format file that renders a row: the question, then the answer.</summary>
    public const string FormatFile = "{ \"question,answer\": \"%question%%answer%\" }\n";

    /// <summary>Writes the training rows as JSONL {"question": prompt, "answer": answer}.</summary>
    public static void WriteDataset(string path, IEnumerable<int> numbers)
    {
        var lines = numbers.Select(n => System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["question"] = Prompt(n), ["answer"] = Answer(n) }));
        File.WriteAllLines(path, lines);
    }

    /// <summary>Share of <paramref name="numbers"/> whose greedy answer is exactly right, and one example answer.</summary>
    public static (double Accuracy, string Example) Evaluate(ModelSession session, IReadOnlyList<int> numbers)
    {
        var generator = new TextGenerator(session.Model, session.Tokenizer);
        int right = 0;
        string example = "";
        foreach (int n in numbers)
        {
            var result = generator.Generate(Prompt(n), new GenerationOptions { MaxNewTokens = 5, Sampling = SamplingSettings.Greedy, StopStrings = ["\n"] });
            if (result.Text.Trim() == (n + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)) right++;
            if (example.Length == 0) example = $"{Prompt(n).Replace("\n", " ")}{result.Text}";
        }
        return (right / (double)Math.Max(1, numbers.Count), example);
    }
}
