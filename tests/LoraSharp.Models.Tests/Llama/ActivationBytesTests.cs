// LlamaActivations.ByteCount (what memory estimates use) against the buffers a real allocation holds.
using LoraSharp.Models.Llama;

namespace LoraSharp.Models.Tests.Llama;

public class ActivationBytesTests
{
    [Theory]
    [InlineData(64, 172, 5, 8, 4, 1, 512, false, 8)]    // stories260K, GQA
    [InlineData(64, 172, 5, 8, 4, 1, 512, true, 8)]
    [InlineData(96, 64, 3, 6, 6, 3, 40, false, 0)]      // hidden smaller than the width: LoRA scratch sized by it
    [InlineData(96, 256, 2, 4, 1, 2, 33, true, 16)]
    public void ByteCount_EqualsTheBytesOfARealAllocation(int hidden, int intermediate, int layers, int heads, int kvHeads,
        int B, int T, bool checkpointing, int rank)
    {
        var config = new LlamaConfig
        {
            HiddenSize = hidden, IntermediateSize = intermediate, NumHiddenLayers = layers, NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads, HeadDim = hidden / heads, VocabSize = 100, MaxPositionEmbeddings = 1024,
        };
        var acts = new LlamaActivations(config, B, T, checkpointing, rank);
        Assert.Equal(acts.Bytes, LlamaActivations.ByteCount(config, B, T, checkpointing, rank));
    }

    [Theory]
    [InlineData("qwen3", false)]
    [InlineData("qwen3", true)]
    [InlineData("gemma3_text", false)]
    [InlineData("gemma3_text", true)]
    [InlineData("gemma2", false)]
    [InlineData("smollm3", false)]
    [InlineData("phi3", false)]
    [InlineData("phi3", true)]
    public void ByteCount_EqualsARealAllocation_ForTheFamilies(string type, bool checkpointing)
    {
        // qwen3 keeps q/k before their norms; gemma keeps both branch outputs before their norms; phi3 one fused output.
        var config = new LlamaConfig
        {
            ModelType = type, HiddenSize = 48, IntermediateSize = 64, NumHiddenLayers = 3, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, HeadDim = 20, VocabSize = 100, MaxPositionEmbeddings = 1024,
        };
        var acts = new LlamaActivations(config, 2, 37, checkpointing, 4);
        Assert.Equal(acts.Bytes, LlamaActivations.ByteCount(config, 2, 37, checkpointing, 4));
    }
}
