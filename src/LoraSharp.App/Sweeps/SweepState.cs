// sweep_state.json in a sweep's output folder: the rows of the runs done so far, rewritten atomically after each run
// (and after each run's training, before its metrics), so a sweep stopped by Ctrl+C, a crash or a kill -9 resumes
// without redoing them. A run is matched by name and by a hash of its settings and model, so a changed config never
// reuses an old row silently.
using System.Text.Json;
using System.Text.Json.Serialization;
using LoraSharp.Core;

namespace LoraSharp.App.Sweeps;

/// <summary>The persisted progress of a sweep.</summary>
public sealed class SweepState
{
    /// <summary>The file name in the sweep's output folder.</summary>
    public const string FileName = "sweep_state.json";

    /// <summary>Format version.</summary>
    [JsonPropertyName("version")] public int Version { get; init; } = 1;

    /// <summary>Rows of trained or finished runs, in run order.</summary>
    [JsonPropertyName("runs")] public List<SweepRunResult> Runs { get; init; } = [];

    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Reads the state of <paramref name="folder"/>, or an empty one when it has none.</summary>
    public static SweepState Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return new SweepState();
        try
        {
            var state = JsonSerializer.Deserialize<SweepState>(File.ReadAllText(path), Options);
            if (state == null || state.Version != 1 || state.Runs.Any(r => r == null))
                throw new JsonException("not a version 1 sweep state");
            return state;
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{path} is damaged ({e.Message}); delete it (finished adapter folders stay) or pass --restart to measure every run again.", e);
        }
    }

    /// <summary>Writes the state atomically.</summary>
    public void Save(string folder) => Formats.Durable.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, Options));

    /// <summary>The row of run <paramref name="name"/>, or null.</summary>
    public SweepRunResult? Find(string name) => Runs.FirstOrDefault(r => r.Name == name);

    /// <summary>Adds or replaces the row of <paramref name="row"/>'s run.</summary>
    public void Put(SweepRunResult row)
    {
        int i = Runs.FindIndex(r => r.Name == row.Name);
        if (i >= 0) Runs[i] = row; else Runs.Add(row);
    }
}
