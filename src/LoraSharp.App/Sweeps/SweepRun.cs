// One planned run of a sweep: its index, folder name, axis values (as shown in tables) and full settings.
using LoraSharp.Training;

namespace LoraSharp.App.Sweeps;

/// <summary>One run of a sweep.</summary>
/// <param name="Index">1-based position in the sweep.</param>
/// <param name="Name">Adapter folder name (also its lora_name).</param>
/// <param name="Values">Axis name → value as shown; "-" where this run leaves the axis at the base value.</param>
/// <param name="Settings">The run's complete, validated settings.</param>
/// <param name="Labels">Axis name → the value as the config wrote it ("=2*lora_rank" for an expression): plots group and
/// place runs by it, so alpha = r and alpha = 2r are two lines across ranks, not one line per alpha number.</param>
public sealed record SweepRun(int Index, string Name, IReadOnlyList<KeyValuePair<string, string>> Values, TrainingSettings Settings,
    IReadOnlyDictionary<string, string> Labels);
