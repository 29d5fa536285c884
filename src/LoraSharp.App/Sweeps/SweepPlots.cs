// The plots of a sweep, as PNG and SVG (ScottPlot 5, drawn by SkiaSharp's self-contained Linux build, which reads
// fonts from /usr/share/fonts; .ci/run installs fonts-dejavu-core on a bare machine):
//   loss-curves: every run's training loss by step, overlaid (validation loss as dots where measured);
//   metric-vs-AXIS: the sweep's metric (exact match where a run scores, perplexity, else best eval loss, else final loss) against each
//     axis, one line per combination of the other axes;
//   memory-vs-time: peak RSS against step time, one labelled point per run.
// Each file is written atomically. Not here: what the runs measured (SweepJob).
using System.Globalization;
using System.Text.Json;
using LoraSharp.Training;
using ScottPlot;

namespace LoraSharp.App.Sweeps;

/// <summary>Writes a sweep's plots.</summary>
public static class SweepPlots
{
    private const int Width = 900, Height = 560;

    /// <summary>Writes every plot into <paramref name="folder"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<string> axes, IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows, string sweepFolder)
    {
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        files.AddRange(Save(LossCurves(rows, sweepFolder), folder, "loss-curves"));
        var (metricName, metric) = Metric(rows);
        foreach (string axis in axes)
            if (MetricVsAxis(axis, axes, rows, metricName, metric) is { } plot) files.AddRange(Save(plot, folder, "metric-vs-" + axis));
        if (rows.Any(r => r.Row.PeakRssBytes != null)) files.AddRange(Save(MemoryVsTime(rows), folder, "memory-vs-time"));
        return files;
    }

    /// <summary>The metric the plots show, and its value per row.</summary>
    public static (string Name, Func<SweepRunResult, double?> Value) Metric(IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows)
    {
        // Exact match only when some run scores: all-zero runs (too short to learn the skill) compare better by loss.
        if (rows.Any(r => r.Row.ExactMatch > 0)) return ("held-out exact match (%)", r => r.ExactMatch * 100);
        if (rows.Any(r => r.Row.Perplexity != null)) return ("held-out perplexity", r => r.Perplexity);
        if (rows.Any(r => r.Row.BestEvalLoss != null)) return ("best validation loss", r => r.BestEvalLoss);
        return ("final training loss", r => r.FinalLoss);
    }

    private static Plot LossCurves(IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows, string sweepFolder)
    {
        var plot = new Plot();
        int color = 0;
        foreach (var (run, _) in rows)
        {
            var steps = TrainingStepLog.Read(Path.Combine(sweepFolder, run.Name, TrainingStepLog.FileName), out _).Where(r => double.IsFinite(r.Loss)).ToList();
            if (steps.Count == 0) continue;
            var c = Palette(color++);
            var s = plot.Add.Scatter(steps.Select(r => (double)r.Step).ToArray(), steps.Select(r => r.Loss).ToArray());
            s.LegendText = run.Name;
            s.MarkerSize = 0;
            s.Color = c;
            var evals = steps.Where(r => r.EvalLoss is double e && double.IsFinite(e)).ToList();
            if (evals.Count > 0)
            {
                var e = plot.Add.Scatter(evals.Select(r => (double)r.Step).ToArray(), evals.Select(r => r.EvalLoss!.Value).ToArray());
                e.Color = c;
                e.LineWidth = 0;   // markers only: Skia's SVG canvas cannot write dash effects (it prints a warning per line)
                e.MarkerSize = 6;
            }
        }
        plot.Title("training loss by step (dots: validation loss)");
        plot.XLabel("step");
        plot.YLabel("loss");
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static Plot? MetricVsAxis(string axis, IReadOnlyList<string> axes, IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows, string metricName, Func<SweepRunResult, double?> metric)
    {
        static string Label(SweepRun run, string axis) => run.Labels.GetValueOrDefault(axis, "-").TrimStart('=');   // "=2*lora_rank" shows as 2*lora_rank
        var values = rows.Select(r => Label(r.Run, axis)).Distinct().ToList();
        if (values.Count < 2) return null;
        bool numeric = values.All(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
        if (numeric) values = values.OrderBy(v => double.Parse(v, CultureInfo.InvariantCulture)).ToList();
        var plot = new Plot();
        var others = axes.Where(a => a != axis).ToList();
        int color = 0;
        foreach (var group in rows.GroupBy(r => string.Join(", ", others.Select(o => o + "=" + Label(r.Run, o)))))
        {
            var points = group.Select(r => (X: (double)values.IndexOf(Label(r.Run, axis)), Y: metric(r.Row)))
                .Where(p => p.Y is double y && double.IsFinite(y)).OrderBy(p => p.X).ToList();
            if (points.Count == 0) continue;
            var s = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y!.Value).ToArray());
            s.Color = Palette(color++);
            s.MarkerSize = 8;
            if (others.Count > 0) s.LegendText = group.Key;
        }
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, values.Count).Select(i => (double)i).ToArray(), values.ToArray());
        plot.Axes.SetLimitsX(-0.5, values.Count - 0.5);
        plot.Title($"{metricName} by {axis}");
        plot.XLabel(axis);
        plot.YLabel(metricName);
        if (others.Count > 0) plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    private static Plot MemoryVsTime(IReadOnlyList<(SweepRun Run, SweepRunResult Row)> rows)
    {
        var plot = new Plot();
        foreach (var (run, row) in rows)
        {
            if (row.PeakRssBytes is not long rss) continue;
            double x = row.StepSeconds * 1000, y = rss / 1048576.0;
            var s = plot.Add.Scatter(new[] { x }, new[] { y });
            s.MarkerSize = 9;
            s.Color = Palette(run.Index - 1);
            var t = plot.Add.Text(run.Name, x, y);
            t.LabelFontSize = 11;
            t.LabelFontColor = Palette(run.Index - 1);
        }
        plot.Axes.AutoScale();
        var limits = plot.Axes.GetLimits();
        plot.Axes.SetLimitsX(limits.Left, limits.Right + 0.4 * Math.Max(limits.Right - limits.Left, 1e-9));   // room for the labels
        plot.Title("peak memory vs step time (one point per run)");
        plot.XLabel("step time (ms)");
        plot.YLabel("peak RSS (MiB)");
        return plot;
    }

    private static Color Palette(int i) => new ScottPlot.Palettes.Category10().GetColor(i);

    private static IEnumerable<string> Save(Plot plot, string folder, string name)
    {
        string png = Path.Combine(folder, name + ".png"), svg = Path.Combine(folder, name + ".svg");
        byte[] bytes = plot.GetImageBytes(Width, Height, ImageFormat.Png);
        Formats.Durable.WriteFile(png, s => s.Write(bytes));
        Formats.Durable.WriteAllText(svg, plot.GetSvgXml(Width, Height));
        return [png, svg];
    }
}
