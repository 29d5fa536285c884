// A LoRA training step (zero grads, forward + backward, AdamW) allocates nothing on the managed heap once warm, on any
// thread: buffers are created on the first step and reused. This caught a shape string built on every matmul call and
// LINQ over the layers on every forward (17 KB a step on a 2-layer model).
using LoraSharp.Core.Optim;
using LoraSharp.Core.Tensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;

namespace LoraSharp.Models.Tests.Llama;

// Counts every thread's allocations, so no other test may run meanwhile.
[CollectionDefinition(nameof(StepAllocationTests), DisableParallelization = true)]
public sealed class StepAllocationCollection;

[Collection(nameof(StepAllocationTests))]
public class StepAllocationTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false, true)]
    public void LoraTrainingStep_AllocatesNothing_OnceWarm(bool tied, bool checkpointing, bool packed = false)
    {
        var config = new LlamaConfig
        {
            HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
            HeadDim = 16, VocabSize = 256, MaxPositionEmbeddings = 256, RmsNormEps = 1e-5, RopeTheta = 10000, TieWordEmbeddings = tied,
        };
        using var model = LlamaModel.FromTensors(config, RandomWeights.Create(config, seed: 0, DType.F32), "random", consumeTensors: true);
        model.ActivationCheckpointing = checkpointing;
        LoraInjector.Attach(model, new LoraSettings { Rank = 8, Alpha = 16, Dropout = 0.05, TargetModules = ["all-linear"] }, seed: 0);
        var parameters = model.TrainableParameters();
        var optimizer = new AdamW(weightDecay: 0.01);
        var rng = new Random(0);
        int B = 2, T = 32;
        var ids = Enumerable.Range(0, B * T).Select(_ => rng.Next(config.VocabSize)).ToArray();
        // Packed: the same tokens as one row of two samples (sequence ids), as the trainer's micro-batches are.
        var batch = packed ? new Batch(1, B * T, ids, labels: ids, sequenceIds: [.. Enumerable.Range(0, B * T).Select(i => i / T)])
                           : new Batch(B, T, ids, labels: ids);
        void Step(int i)
        {
            Optimizer.ZeroGrad(parameters);
            model.ForwardBackward(batch, 1f / batch.TargetCount, (ulong)i, out _);
            optimizer.Step(parameters, 1e-3);
        }
        for (int i = 0; i < 3; i++) Step(i);

        // The least of three tries: the test host's own threads may allocate now and then, a step's allocation
        // shows in every try.
        long allocated = long.MaxValue;
        for (int attempt = 0, i = 3; attempt < 3 && allocated > 0; attempt++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int end = i + 3; i < end; i++) Step(i);
            allocated = Math.Min(allocated, GC.GetTotalAllocatedBytes(precise: true) - before);
        }

        Assert.True(allocated == 0, $"3 warm training steps allocated {allocated} bytes (expected none)");
    }
}
