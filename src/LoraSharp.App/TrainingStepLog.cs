// A run's per-step log, training_log.jsonl: one StepRecord a line, appended as each step ends (FineTuneJob), so after
// a kill -9 the last line may be torn. The one reader for everything that draws or compares runs (the web's Compare
// view, a sweep's plots). Not here: training_log.json, the whole history written when a run ends (AdapterCatalog).
using System.Text.Json;
using System.Text.Json.Serialization;
using LoraSharp.Training;

namespace LoraSharp.App;

/// <summary>Reads training_log.jsonl.</summary>
public static class TrainingStepLog
{
    /// <summary>The file's name inside a run's folder.</summary>
    public const string FileName = "training_log.jsonl";

    // "NaN" and "Infinity" as named literals, as the run's other logs write them.
    private static readonly JsonSerializerOptions Options = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>
    /// The records of <paramref name="path"/> in file order (empty when it does not exist); <paramref name="unreadable"/>
    /// counts lines that are not a record, except a torn last line (a run being written or killed).
    /// </summary>
    public static List<StepRecord> Read(string path, out int unreadable)
    {
        unreadable = 0;
        var records = new List<StepRecord>();
        if (!File.Exists(path)) return records;
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            try
            {
                if (JsonSerializer.Deserialize<StepRecord>(lines[i], Options) is { } r) records.Add(r);
            }
            catch (JsonException)
            {
                if (i < lines.Length - 1) unreadable++;
            }
        }
        return records;
    }
}
