// The results table of a sweep: one row per finished run, every axis value, then the measurements. CSV keeps full
// precision (for scripts); Markdown rounds for reading (docs/experiments.md embeds it). Columns of a measurement no
// run has (no validation set, no metric, no peak RSS) are left out.
using System.Globalization;
using System.Text;

namespace LoraSharp.App.Sweeps;

/// <summary>CSV and Markdown tables of sweep results.</summary>
public static class SweepTable
{
    private sealed record Column(string Csv, string Md, Func<SweepRunResult, double?> Value, string MdFormat);

    private static readonly Column[] Columns =
    [
        new("steps", "steps", r => r.Steps, "F0"),
        new("final_loss", "final loss", r => r.FinalLoss, "F4"),
        new("best_eval_loss", "best eval loss", r => r.BestEvalLoss, "F4"),
        new("perplexity", "perplexity", r => r.Perplexity, "F3"),
        new("exact_match", "exact match %", r => r.ExactMatch * 100, "F0"),
        new("tokens_per_second", "tokens/s", r => r.TokensPerSecond, "F0"),
        new("step_seconds", "step ms", r => r.StepSeconds * 1000, "F1"),
        new("peak_rss_bytes", "peak RSS MiB", r => r.PeakRssBytes, "MiB"),
        new("trainable_parameters", "trainable params", r => r.TrainableParameters, "N0"),
        new("adapter_bytes", "adapter KiB", r => r.AdapterBytes, "KiB"),
        new("optimizer_state_bytes", "optimizer state KiB", r => r.OptimizerStateBytes, "KiB"),
        new("base_weight_bytes", "base weights KiB", r => r.BaseWeightBytes, "KiB"),
    ];

    private static List<Column> Present(IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows) =>
        Columns.Where(c => rows.Count == 0 || rows.Any(r => c.Value(r.Row) is double v && !double.IsNaN(v))).ToList();

    /// <summary>CSV: run, axes..., measurements (invariant culture, full precision; empty where not measured).</summary>
    public static string Csv(IReadOnlyList<string> axes, IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows)
    {
        var cols = Present(rows);
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(",", new[] { "run" }.Concat(axes).Concat(cols.Select(c => c.Csv)).Select(CsvField)));
        foreach (var (run, row) in rows)
        {
            var fields = new List<string> { run.Name };
            fields.AddRange(axes.Select(a => row.Values.GetValueOrDefault(a, "-")));
            fields.AddRange(cols.Select(c => c.Value(row) is double v
                ? (c.Csv.EndsWith("_bytes", StringComparison.Ordinal) || c.Csv is "steps" or "trainable_parameters"
                    ? ((long)v).ToString(CultureInfo.InvariantCulture)
                    : c.Csv == "exact_match" ? (v / 100).ToString("R", CultureInfo.InvariantCulture) : v.ToString("R", CultureInfo.InvariantCulture))
                : ""));
            sb.AppendLine(string.Join(",", fields.Select(CsvField)));
        }
        return sb.ToString();
    }

    /// <summary>A Markdown table (rounded values; "–" where not measured).</summary>
    public static string Markdown(IReadOnlyList<string> axes, IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows)
    {
        var cols = Present(rows);
        var sb = new StringBuilder();
        var header = new[] { "run" }.Concat(axes).Concat(cols.Select(c => c.Md)).ToList();
        sb.AppendLine("| " + string.Join(" | ", header) + " |");
        sb.AppendLine("|" + string.Concat(header.Select((_, i) => i <= axes.Count ? " --- |" : " ---: |")));
        foreach (var (run, row) in rows)
        {
            var cells = new List<string> { run.Name };
            cells.AddRange(axes.Select(a => MdCell(row.Values.GetValueOrDefault(a, "-"))));
            cells.AddRange(cols.Select(c => c.Value(row) is double v && !double.IsNaN(v) ? Format(v, c.MdFormat) : "–"));
            sb.AppendLine("| " + string.Join(" | ", cells) + " |");
        }
        return sb.ToString();
    }

    private static string Format(double v, string format) => format switch
    {
        "MiB" => (v / 1048576).ToString("F1", CultureInfo.InvariantCulture),
        "KiB" => (v / 1024).ToString("F1", CultureInfo.InvariantCulture),
        _ => v.ToString(format, CultureInfo.InvariantCulture),
    };

    private static string MdCell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);

    private static string CsvField(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}
