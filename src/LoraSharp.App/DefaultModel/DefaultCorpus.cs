// The pretraining corpus of LoraSharp's embedded default model, generated (never copied): short stories made from
// word lists, with numbers in everyday contexts. It deliberately never counts ("..., 41, 42, ...") and never says
// which number comes after another, so the pretrained model lacks the skill the default fine-tune then teaches.
using System.Text;

namespace LoraSharp.App.DefaultModel;

/// <summary>Generates the default model's pretraining text.</summary>
public static class DefaultCorpus
{
    private static readonly string[] Names = ["Tom", "Mia", "Ben", "Lily", "Sam", "Anna", "Max", "Zoe", "Leo", "Ruby", "Jack", "Emma"];
    private static readonly string[] Animals = ["cat", "dog", "bird", "fish", "frog", "duck", "horse", "rabbit", "bear", "fox"];
    private static readonly string[] Things = ["apples", "books", "balls", "stones", "flowers", "cookies", "shells", "cards", "boats", "hats"];
    private static readonly string[] Places = ["park", "garden", "forest", "river", "school", "market", "beach", "farm", "hill", "town"];
    private static readonly string[] Adjectives = ["big", "small", "red", "blue", "happy", "old", "new", "green", "soft", "quiet"];
    private static readonly string[] Verbs = ["found", "saw", "liked", "painted", "counted", "carried", "shared", "hid", "washed", "sold"];
    private static readonly string[] Feelings = ["happy", "sad", "tired", "proud", "surprised", "calm", "excited", "sleepy"];

    /// <summary>About <paramref name="characters"/> characters of stories separated by blank lines.</summary>
    public static string Generate(int characters, int seed)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder(characters + 1024);
        string Pick(string[] words) => words[rng.Next(words.Length)];
        int Num() => rng.Next(4) == 0 ? rng.Next(100, 1000) : rng.Next(0, 100);
        while (sb.Length < characters)
        {
            string a = Pick(Names), b = Pick(Names), thing = Pick(Things), place = Pick(Places), animal = Pick(Animals);
            int sentences = 3 + rng.Next(4);
            for (int i = 0; i < sentences; i++)
            {
                int n = Num();
                switch (rng.Next(13))
                {
                    // Repetitions teach the model to copy numbers and words from earlier in the text (an induction
                    // ability the fine-tune builds on); they never change the number.
                    case 10: sb.Append($"{a} had {n} {thing}, and {b} had {n} {thing} too. "); break;
                    case 11: sb.Append($"\"{n}!\" said {a}. {b} wrote {n} on the {Pick(Adjectives)} card. "); break;
                    case 12: sb.Append($"Question: How many {thing} did {a} have? Answer: {a} had {n}.\n"); break;
                    case 0: sb.Append($"{a} went to the {place} with {b}. "); break;
                    case 1: sb.Append($"{a} had {Num()} {thing}. "); break;
                    case 2: sb.Append($"There were {Num()} {Pick(Adjectives)} {thing} in the {place}. "); break;
                    case 3: sb.Append($"{b} {Pick(Verbs)} a {Pick(Adjectives)} {animal}. "); break;
                    case 4: sb.Append($"The {animal} was {Pick(Feelings)}. "); break;
                    case 5: sb.Append($"{a} said, \"I see {Num()} {thing}!\" "); break;
                    case 6: sb.Append($"On day {Num()}, {a} and {b} played in the {place}. "); break;
                    case 7: sb.Append($"The {place} had {Num()} trees and a {Pick(Adjectives)} {animal}. "); break;
                    case 8: sb.Append($"{b} felt {Pick(Feelings)} and smiled at {a}. "); break;
                    default: sb.Append($"Question: Where is the {animal}? Answer: In the {place}.\n"); break;
                }
            }
            sb.Append("\n\n");
        }
        return sb.ToString();
    }
}
