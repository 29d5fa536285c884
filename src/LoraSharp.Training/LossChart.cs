// A self-contained SVG chart of the training and validation loss by step, written next to the adapter so a person
// can open it in any browser. No scripts, no external fonts or files.
using System.Globalization;
using System.Text;

namespace LoraSharp.Training;

/// <summary>Draws loss curves as SVG.</summary>
public static class LossChart
{
    /// <summary>An SVG document with the train loss (blue) and eval loss (orange) of <paramref name="history"/>.</summary>
    public static string Svg(IReadOnlyList<StepRecord> history, string title)
    {
        const int W = 720, H = 360, L = 60, R = 20, T = 40, B = 40;
        var train = history.Where(h => double.IsFinite(h.Loss)).Select(h => (X: (double)h.Step, Y: h.Loss)).ToList();
        var eval = history.Where(h => h.EvalLoss is { } e && double.IsFinite(e)).Select(h => (X: (double)h.Step, Y: h.EvalLoss!.Value)).ToList();
        var all = train.Concat(eval).ToList();
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n<text x=\"{L}\" y=\"24\" font-size=\"15\">{Escape(title)}</text>\n");
        if (all.Count > 0)
        {
            double x0 = Math.Min(0, all.Min(p => p.X)), x1 = Math.Max(all.Max(p => p.X), x0 + 1);
            double y0 = all.Min(p => p.Y), y1 = all.Max(p => p.Y);
            if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
            double pad = (y1 - y0) * 0.05;
            y0 -= pad; y1 += pad;
            string Px(double x) => (L + (x - x0) / (x1 - x0) * (W - L - R)).ToString("F1", CultureInfo.InvariantCulture);
            string Py(double y) => (H - B - (y - y0) / (y1 - y0) * (H - T - B)).ToString("F1", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{H - B}\" x2=\"{W - R}\" y2=\"{H - B}\" stroke=\"#444\"/><line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{H - B}\" stroke=\"#444\"/>\n");
            for (int i = 0; i <= 4; i++)
            {
                double y = y0 + (y1 - y0) * i / 4, x = x0 + (x1 - x0) * i / 4;
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{L - 6}\" y=\"{Py(y)}\" text-anchor=\"end\" dominant-baseline=\"middle\">{y:0.###}</text>");
                sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{Py(y)}\" x2=\"{W - R}\" y2=\"{Py(y)}\" stroke=\"#eee\"/>");
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Px(x)}\" y=\"{H - B + 16}\" text-anchor=\"middle\">{x:0}</text>\n");
            }
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{(W + L) / 2}\" y=\"{H - 6}\" text-anchor=\"middle\">step</text>\n");
            void Line(List<(double X, double Y)> pts, string color, string label, int row)
            {
                if (pts.Count == 0) return;
                sb.Append($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"");
                foreach (var (x, y) in pts) sb.Append(Px(x)).Append(',').Append(Py(y)).Append(' ');
                sb.Append("\"/>\n");
                if (pts.Count == 1) sb.Append($"<circle cx=\"{Px(pts[0].X)}\" cy=\"{Py(pts[0].Y)}\" r=\"3\" fill=\"{color}\"/>\n");
                sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{W - R - 130}\" y=\"{T + row * 18}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{W - R - 112}\" y=\"{T + row * 18 + 10}\">{label}</text>\n");
            }
            Line(train, "#1f77b4", "train loss", 0);
            Line(eval, "#ff7f0e", "eval loss", 1);
        }
        else
        {
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W / 2}\" y=\"{H / 2}\" text-anchor=\"middle\">no steps yet</text>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
