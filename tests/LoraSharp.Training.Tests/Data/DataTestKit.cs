// Shared pieces of the data tests: the stories260K tokenizer (read from ../shared), a temporary folder that
// deletes itself, and helpers to decode the trained part of a sample.
using LoraSharp.Models.Llama;
using LoraSharp.Tokenizers;
using LoraSharp.TestSupport;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Tests.Data;

internal static class DataTestKit
{
    private static readonly Lazy<Tokenizer> s_tok = new(() => TokenizerLoader.FromFile(SharedFixtures.Stories260KHf));

    /// <summary>stories260K's SentencePiece tokenizer (BOS 1 added, EOS 2, no pad).</summary>
    public static Tokenizer Tok => s_tok.Value;

    /// <summary>The repository root (holding LoraSharp.slnx).</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoraSharp.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException("LoraSharp.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The decoded text of the trained tokens, runs joined.</summary>
    public static string TrainedText(TrainingSample s) =>
        string.Concat(DataPreview.TrainedRuns(s).Select(r => Tok.Decode(s.InputIds[r.Start..r.End])));

    public static int Trained(TrainingSample s) => s.Labels.Count(l => l != Batch.IgnoreIndex);
}

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Root = Path.Combine(Path.GetTempPath(), "lorasharp-data-" + Guid.NewGuid().ToString("N")));

    public string Root { get; }

    public string File(string name, string content)
    {
        string p = Path.Combine(Root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        System.IO.File.WriteAllText(p, content);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
