// The generate tab's model cache: one load for many requests, adapters attached per request and cleanly detached,
// a reload when the model's files change, and a drop when a training starts.
using LoraSharp.App;
using LoraSharp.Models.Llama;
using LoraSharp.TestSupport;
using LoraSharp.Web.Api;

namespace LoraSharp.Web.Tests;

public sealed class ModelCacheTests
{
    private static readonly int[] Ids = [1, 403, 407, 261, 378, 107, 263, 395];
    private static string GoldenAdapter => SharedFixtures.Path("golden", "stories260K", "lora");

    private static float[] Logits(ModelSession s) => s.Model.Logits(new Batch(1, Ids.Length, Ids));

    [Fact]
    public void Requests_ShareOneLoad_AndAnAdapterIsGoneAfterItsRequest()
    {
        using var cache = new ModelCache();
        string model = SharedFixtures.Stories260KHf;
        var before = cache.Use(model, [], Logits, CancellationToken.None);
        var adapted = cache.Use(model, [new AdapterSpec(GoldenAdapter, 0.5)], Logits, CancellationToken.None);
        var after = cache.Use(model, [], Logits, CancellationToken.None);
        Assert.Equal(1, cache.Loads);

        Assert.Equal(before, after);   // detached: the base again, bit for bit
        using var fresh = ModelSession.Open(model, [new AdapterSpec(GoldenAdapter, 0.5)]);
        Assert.Equal(Logits(fresh), adapted);
        Assert.NotEqual(before, adapted);
    }

    [Fact]
    public void AChangedModelFile_IsLoadedAgain_AndADropFreesTheModel()
    {
        string dir = Directory.CreateTempSubdirectory("lorasharp-cache-").FullName;
        try
        {
            foreach (var f in Directory.GetFiles(SharedFixtures.Stories260KHf)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            using var cache = new ModelCache();
            cache.Use(dir, [], Logits, CancellationToken.None);
            cache.Use(dir, [], Logits, CancellationToken.None);
            Assert.Equal(1, cache.Loads);

            File.SetLastWriteTimeUtc(Path.Combine(dir, "config.json"), DateTime.UtcNow.AddMinutes(1));
            cache.Use(dir, [], Logits, CancellationToken.None);
            Assert.Equal(2, cache.Loads);

            cache.Drop();
            cache.Use(dir, [], Logits, CancellationToken.None);
            Assert.Equal(3, cache.Loads);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ABadAdapter_FailsItsRequest_AndLeavesTheCachedModelClean()
    {
        using var cache = new ModelCache();
        string model = SharedFixtures.Stories260KHf;
        var before = cache.Use(model, [], Logits, CancellationToken.None);
        Assert.ThrowsAny<Exception>(() => cache.Use(model, [new AdapterSpec(GoldenAdapter), new AdapterSpec("/no/such/adapter")], Logits, CancellationToken.None));
        Assert.Equal(before, cache.Use(model, [], Logits, CancellationToken.None));
        Assert.Equal(1, cache.Loads);
    }
}
