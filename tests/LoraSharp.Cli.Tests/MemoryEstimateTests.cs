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

    public static TheoryData<string[], string> ModulesToSaveCases()
    {
        var data = new TheoryData<string[], string>();
        foreach (var parts in Models)
            foreach (string modules in new[] { "embed_tokens", "lm_head", "embed_tokens,lm_head" })
                data.Add(parts, modules);
        return data;
    }

    [Theory]
    [MemberData(nameof(ModulesToSaveCases))]
    public void InspectEstimate_ModulesToSave_BaseWeightsEqualWhatTrainingThemLeaves(string[] parts, string modules)
    {
        // As train's estimate counts them: the loaded model after TrainModulesToSave, a trained embedding held once
        // (as a trainable parameter), the frozen rest as the model then holds it (a trained head as new f32 panels).
        string path = SharedFixtures.Path(parts);
        string[] list = modules.Split(',');
        var report = InspectJob.Run(path, list);
        using var session = ModelSession.Open(path);
        var model = session.Model;
        model.TrainModulesToSave(list);
        long frozen = model.BaseWeightBytes - (model.ModulesToSave.Contains("embed_tokens") ? model.Embedding!.ByteLength : 0);
        Assert.Equal(frozen, report.Memory!.BaseWeightsBytes);
        Assert.Equal(list, report.ModulesToSave);
        long V = model.Config.VocabSize, C = model.Config.HiddenSize;
        Assert.Equal(LoraMemoryEstimate.AdapterParameters(model.Config, report.Memory.Rank) + list.Length * V * C, report.Memory.TrainableParameters);
    }

    [Fact]
    public void InspectEstimate_EmbedTokens_GrowsByItsF32WeightsGradientsAndAdamWState()
    {
        // stories260K: tied f32, vocab 512 x hidden 64. embed_tokens trains a copy: 4 bytes value + 4 gradient + 8 AdamW
        // moments a weight; the frozen head keeps the held embedding panels, so the base weights do not change.
        string path = SharedFixtures.Stories260KHf;
        var plain = InspectJob.Run(path).Memory!;
        var withEmbed = InspectJob.Run(path, ["embed_tokens"]).Memory!;
        const long Weights = 512L * 64;
        Assert.Equal(plain.TrainableParameters + Weights, withEmbed.TrainableParameters);
        Assert.Equal(plain.TrainableBytes + Weights * (4 + 4 + 8), withEmbed.TrainableBytes);
        Assert.Equal(plain.BaseWeightsBytes, withEmbed.BaseWeightsBytes);
        Assert.Equal(plain.TotalBytes + Weights * 16, withEmbed.TotalBytes);
        // train's names and checks: model.embed_tokens is PEFT's long form; a LoRA target is refused, naming the option
        Assert.Equal(["embed_tokens"], InspectJob.Run(path, ["model.embed_tokens"]).ModulesToSave);
        var e = Assert.Throws<Core.UserErrorException>(() => InspectJob.Run(path, ["q_proj"]));
        Assert.Contains("--modules-to-save", e.Message);
        Assert.Contains("embed_tokens", e.Message);
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
