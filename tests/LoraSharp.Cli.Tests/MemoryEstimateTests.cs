// The memory estimate that `inspect` prints counts the base weights exactly as a loaded model holds them (one
// definition: LoraMemoryEstimate.HeldBaseWeightBytes against LlamaModel.BaseWeightBytes), for an f32 folder, a
// bf16 file kept as stored by default, and a quantized GGUF; and its activations are the trainer's own buffers.
using LoraSharp.App;
using LoraSharp.TestSupport;

namespace LoraSharp.Cli.Tests;

public class MemoryEstimateTests
{
    public static TheoryData<string[]> Models => new()
    {
        new[] { "models", "stories260K-hf" },
        new[] { "models", "stories260K-hf", "model.bf16.safetensors" },
        new[] { "models", "stories260K-gguf", "stories260K-Q4_0.gguf" },
        new[] { "models", "stories260K-gguf", "stories260K-F32.gguf" },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void InspectEstimate_BaseWeights_EqualWhatTheLoadedModelHolds(string[] parts)
    {
        string path = SharedFixtures.Path(parts);
        var report = InspectJob.Run(path);
        using var session = ModelSession.Open(path);
        Assert.Equal(session.Model.BaseWeightBytes, report.Memory!.BaseWeightsBytes);
        Assert.True(report.MemoryF32!.BaseWeightsBytes >= report.Memory.BaseWeightsBytes);
    }

    [Fact]
    public void Bf16File_DefaultLoad_HoldsHalfTheF32Bytes()
    {
        string path = SharedFixtures.Path("models", "stories260K-hf", "model.bf16.safetensors");
        using var auto = ModelSession.Open(path);
        using var f32 = ModelSession.Open(path, baseDType: "f32");
        // Matrices at 2 instead of 4 bytes; the tied f32 embedding also keeps output panels, a bf16 one is read in place.
        Assert.InRange((double)auto.Model.BaseWeightBytes / f32.Model.BaseWeightBytes, 0.40, 0.52);
    }
}
