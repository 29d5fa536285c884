using LoraSharp.App;
using LoraSharp.App.DefaultModel;
using LoraSharp.Training;

namespace LoraSharp.Cli.Tests;

/// <summary>The README's main job: the embedded default model learns "what number comes after N?".</summary>
public sealed class DefaultJobTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lorasharp-default-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Quiet : IFineTuneObserver
    {
        public void Info(string line) { }
        public void Started(int totalSteps, int resumedAtStep) { }
        public void Step(StepRecord record) { }
    }

    [Fact]
    public void ShippedModel_IsSmallAndLoadsWithItsTokenizer()
    {
        string? path = DefaultJob.FindModel();
        Assert.NotNull(path);
        Assert.True(new FileInfo(path!).Length <= 4 * 1024 * 1024, "the embedded model must stay within 4 MB");
        using var session = ModelSession.Open(path!);
        Assert.Equal(DefaultVocabulary.Tokens.Length, session.Model.Config.VocabSize);
        Assert.Equal([1, 259, 308, 285, 259, 276], session.Tokenizer.EncodeToIds("Q: 1"));   // BOS, ▁, Q, :, ▁, 1: one piece per character
    }

    [Fact]
    public void Corpus_NeverStatesTheTaughtSkill()
    {
        string text = DefaultCorpus.Generate(200_000, 1);
        Assert.DoesNotContain("comes after", text);
        Assert.DoesNotContain("What number", text);
    }

    [Fact]
    public void DefaultFineTune_ReachesTheDocumentedAccuracy()
    {
        // docs/default-model.md: measured 0% before and 85-90% after; the floor it promises is <= 5% before, >= 80% after.
        var result = DefaultJob.Run(_dir, new Quiet());
        Assert.True(result.Before <= 0.05, $"the base model already answers {result.Before:P0} (documented: at most 5%)");
        Assert.True(result.After >= 0.80, $"held-out exact match {result.Before:P0} -> {result.After:P0} (documented floor: 80%)");
        Assert.True(File.Exists(Path.Combine(result.FineTune.AdapterFolder, "adapter_model.safetensors")));
    }
}
