// A small alpaca-style dataset about stories260K's characters, written to a test folder: something the tiny model
// can learn in a few steps, so fine-tune tests can see the validation loss fall.
using System.Text.Json;

namespace LoraSharp.Cli.Tests;

internal static class StoryDataset
{
    private static readonly string[] Names = ["Lily", "Tom", "Max", "Sue", "Ben", "Mia"];
    private static readonly string[] Things = ["ball", "cat", "dog", "tree", "cake", "boat"];

    /// <summary>Writes <paramref name="rows"/> instruction/output rows to dir/file and returns the path.</summary>
    public static string Write(string dir, string file, int rows, int seed)
    {
        var rng = new Random(seed);
        var list = new List<Dictionary<string, string>>();
        for (int i = 0; i < rows; i++)
        {
            string n = Names[rng.Next(Names.Length)], t = Things[rng.Next(Things.Length)];
            list.Add(new() { ["instruction"] = $"Tell me about {n} and the {t}.", ["output"] = $"{n} had a red {t}. {n} loved the red {t}." });
        }
        string path = Path.Combine(dir, file);
        File.WriteAllText(path, JsonSerializer.Serialize(list));
        return path;
    }
}
