// The kill soak: runs `lorasharp train` as a child process, kills it at random moments (SIGKILL, and SIGINT/SIGTERM
// for graceful stops), resumes each time, and checks after every kill that no listed adapter is half-written and at
// the end that the loss sequence and the adapter bytes equal those of an uninterrupted run. A kill lands anywhere:
// loading, training steps, a checkpoint being written, the final rename. KillSoakTests runs a few points in CI; the
// documented soak (docs/reliability.md) runs many: LORASHARP_SOAK_POINTS=25 dotnet test ... --filter KillSoak.
using System.Diagnostics;
using System.Text.Json;
using LoraSharp.App;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Training.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

/// <summary>How one soak went.</summary>
/// <param name="Kills">Kills that hit a running process, by signal.</param>
/// <param name="Launches">Processes started.</param>
/// <param name="Fallbacks">Resumes that had to pass over a damaged checkpoint.</param>
/// <param name="Rounds">Fresh trainings, each killed and resumed to its end and compared with the reference.</param>
internal sealed record SoakReport(Dictionary<string, int> Kills, int Launches, int Fallbacks, int Rounds);

/// <summary>Kill-and-resume soak of the real CLI.</summary>
internal sealed class KillSoak(string dir, int seed)
{
    private const string Name = "soak";
    private readonly Random _rng = new(seed);

    private string Root => Path.Combine(dir, "loras");

    /// <summary>The training command's arguments (a short run with periodic checkpoints and dropout, so resume matters).</summary>
    private string[] Args(string root, string dataset) =>
    [
        "train", "-m", SharedFixtures.Stories260KHf, "--dataset", dataset, "--format", "alpaca", "--name", Name, "-o", root,
        "--micro-batch-size", "4", "--batch-size", "8", "--max-steps", "12", "--save-steps", "2", "--eval-steps", "4",
        "--lora-dropout", "0.1", "-r", "4", "--target-modules", "all-linear", "--learning-rate", "3e-3", "--warmup-steps", "1", "--seed", "7",
    ];

    /// <summary>Runs the uninterrupted reference and then <paramref name="points"/> kills; returns the report.</summary>
    public SoakReport Run(int points)
    {
        string dataset = StoryDataset.Write(dir, "soak.json", 32, 3);
        string referenceRoot = Path.Combine(dir, "reference");
        var sw = Stopwatch.StartNew();
        var reference = Launch([.. Args(referenceRoot, dataset)]);
        reference.WaitForExit();
        double fullSeconds = sw.Elapsed.TotalSeconds;
        Assert.True(reference.ExitCode == 0, $"reference run failed ({reference.ExitCode}): {reference.Output}");

        var kills = new Dictionary<string, int> { ["SIGKILL"] = 0, ["SIGINT"] = 0, ["SIGTERM"] = 0 };
        int launches = 0, fallbacks = 0, hits = 0, rounds = 0;
        string adapter = Path.Combine(Root, Name), run = FineTuneJob.RunFolder(adapter);
        // Rounds: a fresh training killed and resumed until it finishes; a kill that comes after the run has finished
        // is no kill, so rounds repeat until the wanted number of kills has hit running processes.
        while (hits < points)
        {
            if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
            rounds++;
            RunRound(dataset, fullSeconds, points, kills, ref hits, ref launches, ref fallbacks);
            Assert.False(Directory.Exists(run), "a finished run must not leave its .run folder");
            AssertSameRun(Path.Combine(referenceRoot, Name), adapter);
        }
        return new SoakReport(kills, launches, fallbacks, rounds);
    }

    private void RunRound(string dataset, double fullSeconds, int points, Dictionary<string, int> kills, ref int hits, ref int launches, ref int fallbacks)
    {
        string adapter = Path.Combine(Root, Name), run = FineTuneJob.RunFolder(adapter);
        int start = launches;
        while (!Directory.Exists(adapter))
        {
            bool resume = Training.Checkpoint.All(run).Count > 0;
            var p = Launch([.. Args(Root, dataset), resume ? "--resume" : "--overwrite"]);
            launches++;
            if (hits < points)
            {
                // Anywhere from process start to a little past the reference's whole duration.
                int delayMs = (int)(_rng.NextDouble() * fullSeconds * 1.1 * 1000);
                if (!p.WaitForExit(delayMs))
                {
                    string signal = _rng.NextDouble() < 0.7 ? "SIGKILL" : _rng.NextDouble() < 0.5 ? "SIGINT" : "SIGTERM";
                    Signal(p.Process, signal);
                    p.WaitForExit();
                    kills[signal]++;
                    hits++;
                }
            }
            else
            {
                p.WaitForExit();
            }
            string err = p.Output;
            fallbacks += CountOccurrences(err, "cannot be used");
            CheckNothingHalfWritten();
            Assert.True(launches - start < points * 4 + 20, $"the soak is not converging after {launches - start} launches; last output: {err}");
        }
    }

    // Every adapter the catalog lists as finished must load whole: config, every tensor, the log with an outcome.
    private void CheckNothingHalfWritten()
    {
        if (!Directory.Exists(Root)) return;   // killed before it wrote anything: nothing can be half-written
        foreach (var a in AdapterCatalog.List(Root))
        {
            Assert.True(a.Kind is "peft" or "checkpoint", $"{a.Name}: kind {a.Kind} ({a.Problem})");
            Assert.Null(a.Problem);
            if (a.Kind != "peft") continue;
            Assert.NotNull(a.Outcome);
            using var st = SafetensorsFile.Open(Path.Combine(a.Path, PeftAdapter.WeightsFile));
            foreach (var t in st.Tensors) using (st.GetTensor(t.Name)) { }
            Formats.Peft.PeftAdapterConfig.Read(a.Path);
        }
        Assert.DoesNotContain(Directory.EnumerateDirectories(Root).Select(Path.GetFileName), n => n!.StartsWith('.') && !n.Contains(".tmp-"));
    }

    private static void AssertSameRun(string expectedFolder, string actualFolder)
    {
        static double?[][] Losses(string folder) => File.ReadLines(Path.Combine(folder, "training_log.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Select(r => new double?[] { r.GetProperty("step").GetDouble(), r.GetProperty("loss").GetDouble(),
                r.GetProperty("eval_loss").ValueKind == JsonValueKind.Number ? r.GetProperty("eval_loss").GetDouble() : null,
                r.GetProperty("learning_rate").GetDouble() })
            .ToArray();
        var expected = Losses(expectedFolder);
        var actual = Losses(actualFolder);
        Assert.Equal(12, expected.Length);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(expectedFolder, PeftAdapter.WeightsFile)), File.ReadAllBytes(Path.Combine(actualFolder, PeftAdapter.WeightsFile)));
    }

    // A child process whose output is collected as it is written, so that a chatty child never blocks on a full pipe.
    private sealed class Child(Process process, System.Text.StringBuilder output)
    {
        public Process Process { get; } = process;
        public int ExitCode => Process.ExitCode;
        public bool WaitForExit(int ms) => Process.WaitForExit(ms);
        public void WaitForExit() => Process.WaitForExit();
        public string Output { get { lock (output) return output.ToString(); } }
    }

    private static Child Launch(string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "lorasharp.dll");
        var psi = new ProcessStartInfo(DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var output = new System.Text.StringBuilder();
        var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new Child(p, output);
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
            : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";

    private static void Signal(Process p, string signal)
    {
        if (signal == "SIGKILL")
        {
            p.Kill();   // SIGKILL on Unix
            return;
        }
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal[3..], p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    private static int CountOccurrences(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
