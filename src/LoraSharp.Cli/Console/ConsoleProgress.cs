// Progress on the console: a live Spectre.Console bar on an interactive terminal; plain, throttled lines when
// output is redirected or CI is set (logs and CI output stay readable, no escape codes).
using LoraSharp.App.Progress;
using Spectre.Console;

namespace LoraSharp.Cli.Console;

/// <summary>Runs a task while showing its progress on the console.</summary>
public static class ConsoleProgress
{
    /// <summary>True when a live bar may be drawn: a terminal, and not under CI.</summary>
    public static bool IsInteractive =>
        !System.Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    /// <summary>Runs <paramref name="work"/> with a sink that draws its progress under <paramref name="title"/>.</summary>
    public static T Run<T>(string title, Func<IProgressSink, T> work, TextWriter? plainOutput = null)
    {
        if (!IsInteractive || plainOutput != null)
            return work(new PlainSink(title, plainOutput ?? System.Console.Out));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
                result = work(new LiveSink(task, title));
                task.Value = task.MaxValue;
            });
        return result;
    }

    private sealed class LiveSink(ProgressTask task, string title) : IProgressSink
    {
        public void SetTotal(long total) => task.MaxValue = Math.Max(1, total);

        public void Report(long done, string status)
        {
            task.Value = done;
            task.Description = Markup.Escape(string.IsNullOrEmpty(status) ? title : $"{title}  {status}");
        }

        public void Log(string line) => AnsiConsole.WriteLine(line);
    }

    /// <summary>Prints "title done/total (p%) status" at most every two seconds, plus the final report.</summary>
    internal sealed class PlainSink(string title, TextWriter output) : IProgressSink
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private TimeSpan? _last;
        private long _total;

        public void SetTotal(long total) => _total = total;

        public void Report(long done, string status)
        {
            bool final = _total > 0 && done >= _total;
            if (!final && _last is { } last && _clock.Elapsed - last < Interval) return;
            _last = _clock.Elapsed;
            string pct = _total > 0 ? $" ({100.0 * done / _total:0}%)" : "";
            string of = _total > 0 ? $"/{_total}" : "";
            output.WriteLine($"{title} {done}{of}{pct} {status}".TrimEnd());
        }

        public void Log(string line) => output.WriteLine(line);
    }
}
