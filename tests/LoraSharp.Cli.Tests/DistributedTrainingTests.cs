// Data-parallel training on MPI (issue 21), end to end: the built CLI under `mpirun --allow-run-as-root --oversubscribe
// -np 2` on loopback against the same run in one process. Needs Open MPI (`apt-get install -y openmpi-bin
// libopenmpi-dev`; .ci/run installs it). Each run is a few steps of stories260K (seconds).
using System.Diagnostics;
using System.Text.Json;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Training.Peft;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public sealed class DistributedTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-mpi-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // 4 steps of 4 micro-batches (batch 4 = 1 x 4), dropout on, evaluation every 2 steps, a checkpoint at step 2.
    private string[] TrainArgs(string output) =>
    [
        "train", "--model", SharedFixtures.Stories260KHf, "--dataset", StoryDataset.Write(_dir, "train.json", 96, 3), "--format", "alpaca",
        "--cutoff-len", "128", "--micro-batch-size", "1", "--batch-size", "4", "--max-steps", "4", "--learning-rate", "3e-3",
        "--lora-rank", "4", "--lora-dropout", "0.1", "--eval-split", "0.25", "--eval-steps", "2", "--save-steps", "2",
        "-o", output, "--name", "a",
    ];

    [Fact]
    public void TwoRanks_EqualOneProcess_LossesEvalLossesAndAdapter()
    {
        var one = Run(ranks: 1, TrainArgs(Path.Combine(_dir, "one")));
        Assert.True(one.Code == 0, one.Output);
        var two = Run(ranks: 2, TrainArgs(Path.Combine(_dir, "two")));
        Assert.True(two.Code == 0, two.Output);
        Assert.Contains("data-parallel: 2 ranks", two.Output);
        Assert.Equal(1, Count(two.Output, "adapter: "));   // rank 0 alone prints
        AssertSameRun(Path.Combine(_dir, "one", "a"), Path.Combine(_dir, "two", "a"));
    }

    [Fact]
    public void OneRankFailing_EndsTheJobWithItsError_KeepsTheCheckpoint_AndResumesOnOneRank()
    {
        string output = Path.Combine(_dir, "failed");
        var failed = Run(ranks: 2, TrainArgs(output), ("LORASHARP_FAULT", "1:3:throw"));
        Assert.NotEqual(0, failed.Code);
        Assert.Contains("error: rank 1 of 2 failed at step 3: LORASHARP_FAULT: injected failure at step 3.", failed.Output);
        Assert.Equal(1, Count(failed.Output, "failed at step 3"));   // printed by rank 0 only
        string run = Path.Combine(output, "a.run");
        Assert.Equal(["checkpoint-2"], Directory.EnumerateDirectories(run).Select(Path.GetFileName));
        Assert.False(Directory.Exists(Path.Combine(output, "a")));

        // 2 ranks -> 1 process: the resumed run finishes and equals an uninterrupted one-process run.
        var resumed = Run(ranks: 1, [.. TrainArgs(output), "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Output);
        Assert.Contains("resumed from", resumed.Output);
        var one = Run(ranks: 1, TrainArgs(Path.Combine(_dir, "one")));
        Assert.True(one.Code == 0, one.Output);
        AssertSameRun(Path.Combine(_dir, "one", "a"), Path.Combine(output, "a"));
    }

    [Fact]
    public void RankThatHangs_TheOthersTimeOut_AndTheJobEnds()
    {
        string output = Path.Combine(_dir, "hang");
        var watch = Stopwatch.StartNew();
        var hung = Run(ranks: 2, TrainArgs(output), ("LORASHARP_FAULT", "1:3:hang"), ("LORASHARP_MPI_TIMEOUT", "3"));
        Assert.NotEqual(0, hung.Code);
        Assert.Contains("error: rank 0 of 2: no answer from the other ranks for 3 s", hung.Output);
        Assert.True(Directory.Exists(Path.Combine(output, "a.run", "checkpoint-2")), hung.Output);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(90), $"the job took {watch.Elapsed}");
    }

    // Same losses (training and validation) step by step within 1e-5 relative, and the same adapter within 1e-5 of its scale.
    private static void AssertSameRun(string expectedFolder, string actualFolder)
    {
        var expected = Log(expectedFolder);
        var actual = Log(actualFolder);
        Assert.Equal(4, expected.Count);
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            AssertClose(expected[i].Loss, actual[i].Loss, $"loss of step {i + 1}");
            Assert.Equal(expected[i].Eval.HasValue, actual[i].Eval.HasValue);
            if (expected[i].Eval is { } e) AssertClose(e, actual[i].Eval!.Value, $"eval loss of step {i + 1}");
        }
        using var a = SafetensorsFile.Open(Path.Combine(expectedFolder, PeftAdapter.WeightsFile));
        using var b = SafetensorsFile.Open(Path.Combine(actualFolder, PeftAdapter.WeightsFile));
        Assert.Equal(a.Tensors.Select(t => t.Name).Order(), b.Tensors.Select(t => t.Name).Order());
        double scale = 0, diff = 0;
        foreach (var info in a.Tensors)
        {
            using var x = a.GetTensor(info.Name);
            using var y = b.GetTensor(info.Name);
            var xs = x.Floats;
            var ys = y.Floats;
            for (int i = 0; i < xs.Length; i++) { scale = Math.Max(scale, Math.Abs(xs[i])); diff = Math.Max(diff, Math.Abs(xs[i] - ys[i])); }
        }
        Assert.True(scale > 0);
        Assert.True(diff <= 1e-5 * scale, $"adapters differ by {diff} (largest weight {scale})");
    }

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Abs(expected), $"{what}: {actual} vs {expected} in one process");

    private static List<(double Loss, double? Eval)> Log(string folder) =>
        File.ReadAllLines(Path.Combine(folder, "training_log.jsonl")).Where(l => l.Length > 0).Select(l =>
        {
            using var doc = JsonDocument.Parse(l);
            var r = doc.RootElement;
            return (r.GetProperty("loss").GetDouble(), r.GetProperty("eval_loss").ValueKind == JsonValueKind.Number ? r.GetProperty("eval_loss").GetDouble() : (double?)null);
        }).ToList();

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    // The built CLI in one process (LORASHARP_THREADS=1), or under mpirun with one thread per rank.
    private static (int Code, string Output) Run(int ranks, string[] args, params (string Name, string Value)[] env)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "lorasharp.dll");
        ProcessStartInfo psi;
        if (ranks == 1)
        {
            psi = new ProcessStartInfo(DotnetHost());
        }
        else
        {
            string mpirun = FindMpirun();
            psi = new ProcessStartInfo(mpirun);
            foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), DotnetHost() })
                psi.ArgumentList.Add(a);
        }
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.Environment["LORASHARP_THREADS"] = "1";
        psi.Environment.Remove("LORASHARP_FAULT");
        foreach (var (name, value) in env) psi.Environment[name] = value;
        var output = new System.Text.StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(180_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{psi.FileName} did not finish in 180 s:\n{output}");
        }
        p.WaitForExit();
        lock (output) return (p.ExitCode, output.ToString());
    }

    private static string FindMpirun()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, "mpirun"))) return Path.Combine(dir, "mpirun");
        throw new InvalidOperationException("mpirun was not found: these tests need Open MPI. Install it with `apt-get install -y openmpi-bin libopenmpi-dev` (.ci/run does).");
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
            : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
}
