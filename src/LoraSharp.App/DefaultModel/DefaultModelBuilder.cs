// Makes LoraSharp's embedded default base model from scratch: a small Llama (dim 128, 4 layers) pretrained with
// LoraSharp's own full-training mode on DefaultCorpus text, written as a GGUF file (F16 weights, tokenizer inside).
// Reproduce with `lorasharp make-default-model --out models/default/lorasharp-tiny.gguf` (a few minutes on 2 cores).
using LoraSharp.Core.Quant;
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Loading;
using LoraSharp.Tokenizers;
using LoraSharp.Training;
using LoraSharp.Training.Data;

namespace LoraSharp.App.DefaultModel;

/// <summary>Pretrains and writes the default model.</summary>
public static class DefaultModelBuilder
{
    /// <summary>The architecture of the default model.</summary>
    public static LlamaConfig Config { get; } = new()
    {
        ModelType = "llama", HiddenSize = 128, IntermediateSize = 384, NumHiddenLayers = 4, NumAttentionHeads = 4, NumKeyValueHeads = 4,
        HeadDim = 32, VocabSize = DefaultVocabulary.Tokens.Length, MaxPositionEmbeddings = 256, RmsNormEps = 1e-5, RopeTheta = 10000,
        TieWordEmbeddings = true, BosTokenId = 1, EosTokenIds = [2],
    };

    /// <summary>The tokenizer of the default model.</summary>
    public static Tokenizer Tokenizer() => SentencePieceBpe.FromVocabulary(DefaultVocabulary.Tokens, new float[DefaultVocabulary.Tokens.Length],
        DefaultVocabulary.TokenTypes, bosTokenId: 1, eosTokenId: 2, unkTokenId: 0);

    /// <summary>Pretrains for <paramref name="steps"/> steps and writes the GGUF file to <paramref name="path"/>.</summary>
    public static TrainingOutcome Build(string path, int steps, int seed, Action<StepRecord>? onStep = null, CancellationToken cancel = default)
    {
        var tokenizer = Tokenizer();
        var texts = DefaultCorpus.Generate(3_000_000, seed).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        var data = RawTextDataset.Build(texts, "default corpus", tokenizer, new RawTextOptions
        {
            CutoffLength = 128, OverlapLength = 0, NewlineFavorLength = 0, HardCutString = "\\n\\n\\n", AddEosToken = true, ContextLength = Config.MaxPositionEmbeddings,
        });
        var weights = RandomWeights.Create(Config, seed);
        using var model = LlamaModel.FromTensors(Config, weights, "random init", fullFineTuning: true);
        foreach (var t in weights.Values) t.Dispose();
        var settings = new TrainingSettings
        {
            LoraName = "default-base", FullFineTuning = true, CutoffLen = 128, MicroBatchSize = 16, BatchSize = 32, MaxSteps = steps,
            LearningRate = 3e-3, LrSchedulerType = "cosine", WarmupSteps = Math.Max(1, steps / 20), WeightDecay = 0.01, MaxGradNorm = 1.0,
            Seed = seed, EvalSteps = 0,
        };
        var trainer = new Trainer(model, settings, data.Samples, null, Batcher.ResolvePadId(tokenizer));
        if (onStep != null) trainer.StepCompleted += onStep;
        var outcome = trainer.Run(cancel);
        Write(model, path);
        return outcome;
    }

    /// <summary>Writes the model (F16 matrices, F32 norms) with its tokenizer to a GGUF file.</summary>
    public static void Write(LlamaModel model, string path)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var p in model.TrainableParameters())
            {
                string gguf = TensorNames.HfToGguf(p.Name) ?? throw new InvalidOperationException($"no GGUF name for {p.Name}");
                Tensor t;
                if (p.Value.Shape.Length == 2)
                {
                    int heads = TensorNames.IsQuery(p.Name) ? Config.NumAttentionHeads : TensorNames.IsKey(p.Name) ? Config.NumKeyValueHeads : 0;
                    using var permuted = heads > 0 ? RopePermutation.HfToGguf(p.Value, heads) : null;
                    var src = (permuted ?? p.Value).Floats;
                    t = Tensor.Zeros(DType.F16, p.Value.Shape);
                    Fp16.FromFloat(src, t.AsSpan<ushort>());
                }
                else
                {
                    t = Tensor.FromFloats(p.Value.Floats, p.Value.Shape);
                }
                tensors.Add(new(gguf, t));
            }
            var metadata = LlamaConfigWriter.ToGguf(Config, "lorasharp-tiny", fileType: 1);
            metadata.AddRange(DefaultVocabulary.GgufMetadata());
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            GgufWriter.Write(path, metadata, tensors);
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }
}
