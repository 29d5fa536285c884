// The memory a fine-tuning run needs: the one definition that `train` (its run header), `inspect` and the
// benchmarks print. It adds up the trainer's own buffer sizes: the frozen base weights as the model holds them (f32
// forward panels, or the stored bytes of a compressed type: bf16, f16, quant blocks), the trainable parameters with
// their gradients and the optimizer's state (AdamW's and Sophia's two moments, Lion's one, ...), DoRA's per-projection
// buffers (its saved M×N product above all), the activations kept for the backward (LlamaActivations.ByteCount, exact), one
// cross-entropy logits chunk, the per-thread GEMM scratch and the runtime itself. `lorasharp bench train` checks the
// total against the measured peak RSS at every named shape (target within ±15%).
// Not counted: the tokenized dataset (a few bytes a token) and, with a memory-mapped file, pages the kernel reads
// ahead while one tensor at a time is converted (they are dropped again).
using LoraSharp.Core.Tensors;
using LoraSharp.Models;
using LoraSharp.Models.Llama;

namespace LoraSharp.App;

/// <summary>Bytes a fine-tuning run would need (see <see cref="Compute"/> for the assumptions).</summary>
/// <param name="Rank">Adapter rank assumed (sizes the LoRA scratch).</param>
/// <param name="SequenceLength">Tokens per sequence assumed.</param>
/// <param name="MicroBatch">Sequences per step assumed.</param>
/// <param name="BaseWeightsBytes">Frozen base weights as the model holds them.</param>
/// <param name="TrainableParameters">Parameters that learn (A and B of every adapted linear, or every weight).</param>
/// <param name="TrainableBytes">Their values, gradients and optimizer state, all F32 (16 bytes a parameter with AdamW or Sophia, 12 with Lion).</param>
/// <param name="ActivationBytes">Activations saved for the backward, gradient scratch and the cross-entropy logits chunk.</param>
/// <param name="CheckpointedActivationBytes">The same with activation checkpointing (one layer's activations kept).</param>
/// <param name="WorkspaceBytes">Per-thread GEMM scratch and the .NET runtime.</param>
/// <param name="DoraBytes">DoRA's buffers on every DoRA projection (0 without DoRA); the same with checkpointing.</param>
/// <param name="Optimizer">The optimizer whose state <paramref name="TrainableBytes"/> counts.</param>
public sealed record LoraMemoryEstimate(int Rank, int SequenceLength, int MicroBatch, long BaseWeightsBytes, long TrainableParameters,
    long TrainableBytes, long ActivationBytes, long CheckpointedActivationBytes, long WorkspaceBytes, long DoraBytes = 0, string Optimizer = "adamw")
{
    // The runtime, JIT-compiled code, loaded assemblies and GC bookkeeping of a training process. Calibrated on
    // `bench train` of 2026-12-05: with 96 MiB here every estimate came out 20-54 MiB above the measured peak (shape a
    // +12%, +18% with checkpointing, where the whole process is 0.3-0.4 GiB; b, 360M, 1B, 7B +0-3%). The `lorasharp
    // system` command alone peaks at 31 MB.
    private const long RuntimeBytes = 56L << 20;

    /// <summary>The total without activation checkpointing.</summary>
    public long TotalBytes => Total(checkpointing: false);

    /// <summary>The total with or without activation checkpointing.</summary>
    public long Total(bool checkpointing) =>
        BaseWeightsBytes + TrainableBytes + (checkpointing ? CheckpointedActivationBytes : ActivationBytes) + WorkspaceBytes + DoraBytes;

    /// <summary>
    /// F32 state values the optimizer keeps per parameter: adamw/adam 2 (exp_avg, exp_avg_sq), sophia 2 (exp_avg,
    /// hessian), lion 1, sgd 1 with momentum else 0, adafactor 1 with β1 else 0 (its factored second moments hold
    /// rows + columns per matrix, under 1% of a LoRA matrix; not counted).
    /// </summary>
    public static int OptimizerStateFloats(string optimizer, double momentum = 0, double? beta1 = null) =>
        optimizer.Trim().ToLowerInvariant() switch
        {
            "lion" or "lion_32bit" => 1,
            "sgd" => momentum > 0 ? 1 : 0,
            "adafactor" => beta1 is > 0 ? 1 : 0,
            _ => 2,   // adamw (adamw_torch, adamw_hf), adam, sophia (sophiag)
        };

    /// <summary>
    /// Bytes of DoRA's buffers on one N×K projection with an adapter of rank R, for micro-batches of
    /// <paramref name="tokens"/> tokens (what <c>Linear.DoraBufferBytes</c> holds after a step): the saved S (tokens×N
    /// floats), norms and scale (2N floats), the dm sum and the cached ‖W_n‖² (N doubles each) and the row-norm
    /// workspace (max(2RN + R², N + NR, ⌈tokens/64⌉·N) floats: row norms, dropout path, dm's block sums).
    /// </summary>
    public static long DoraBufferBytes(int outFeatures, int inFeatures, int rank, int tokens)
    {
        long N = outFeatures, R = rank;
        _ = inFeatures;   // the norms never form an N×K temporary (Linear.Dora.cs)
        long blocks = (tokens + Core.Kernels.DoraRows.BlockRows - 1) / Core.Kernels.DoraRows.BlockRows;
        return 4L * tokens * N + 4L * 2 * N + 8L * N + 8L * N + 4L * Math.Max(Math.Max(2 * R * N + R * R, N + N * R), blocks * N);
    }

    /// <summary>
    /// Bytes every adapted projection keeps from its forward for its backward, all layers (with or without
    /// checkpointing): s·z (tokens × R floats) and lora_dropout's keep bits (tokens × in features / 8, LoraRows),
    /// counted for every projection of "all-linear" and as if dropout were on.
    /// </summary>
    public static long AdapterSavedBytes(LlamaConfig c, int tokens, int rank)
    {
        long C = c.HiddenSize, I = c.IntermediateSize, Q = (long)c.NumAttentionHeads * c.HeadDim;
        int words(long K) => Core.Kernels.LoraRows.KeepWords((int)K);
        long keepWords = c.FusedProjections ? 2L * words(C) + words(Q) + words(I) : 5L * words(C) + words(Q) + words(I);
        int adapters = c.FusedProjections ? 4 : 7;
        return (4L * tokens * keepWords + 4L * tokens * rank * adapters) * c.NumHiddenLayers;
    }

    /// <summary>Every linear of a layer as (out, in) features: q, k, v, o, gate, up, down ("all-linear").</summary>
    public static IEnumerable<(int Out, int In)> AllLinears(LlamaConfig c)
    {
        int C = c.HiddenSize, I = c.IntermediateSize, Q = c.NumAttentionHeads * c.HeadDim, KV = c.NumKeyValueHeads * c.HeadDim;
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            yield return (Q, C); yield return (KV, C); yield return (KV, C); yield return (C, Q);
            yield return (I, C); yield return (I, C); yield return (C, I);
        }
    }

    /// <summary>LoRA parameters of rank <paramref name="rank"/> on q, k, v, o, gate, up and down of every layer (phi3: on
    /// its four fused projections).</summary>
    public static long AdapterParameters(LlamaConfig c, int rank)
    {
        long C = c.HiddenSize, I = c.IntermediateSize, Q = (long)c.NumAttentionHeads * c.HeadDim, KV = (long)c.NumKeyValueHeads * c.HeadDim;
        if (c.FusedProjections)   // phi3: one A/B on qkv_proj (C -> Q + 2 KV) and one on gate_up_proj (C -> 2 I)
            return (long)rank * ((C + Q + 2 * KV) + (Q + C) + (C + 2 * I) + (I + C)) * c.NumHiddenLayers;
        return (long)rank * ((C + Q) + (C + KV) * 2 + (Q + C) + (C + I) * 2 + (I + C)) * c.NumHiddenLayers;
    }

    /// <summary>The estimate for a model whose base weights hold <paramref name="baseWeightBytes"/>.</summary>
    /// <param name="c">The model's config.</param>
    /// <param name="baseWeightBytes">What the frozen weights hold (LlamaModel.BaseWeightBytes, or <see cref="HeldBaseWeightBytes"/>).</param>
    /// <param name="trainableParameters">Parameters that learn.</param>
    /// <param name="rank">Largest adapter rank (0 for full fine-tuning).</param>
    /// <param name="sequenceLength">Tokens per sequence.</param>
    /// <param name="microBatch">Sequences per micro-batch.</param>
    /// <param name="outputF32">The output projection is held as f32 panels (its cross-entropy chunk is smaller).</param>
    /// <param name="threads">Compute threads (each keeps its GEMM scratch).</param>
    /// <param name="optimizer">The optimizer (sizes its state, see <see cref="OptimizerStateFloats"/>).</param>
    /// <param name="stateFloats">State floats per parameter; null: <see cref="OptimizerStateFloats"/> of <paramref name="optimizer"/>.</param>
    /// <param name="doraModules">(out, in, rank) of every projection with a DoRA adapter; null or empty: no DoRA.</param>
    public static LoraMemoryEstimate Compute(LlamaConfig c, long baseWeightBytes, long trainableParameters, int rank, int sequenceLength,
        int microBatch, bool outputF32, int threads, string optimizer = "adamw", int? stateFloats = null,
        IEnumerable<(int Out, int In, int Rank)>? doraModules = null)
    {
        int chunkRows = LlamaModel.CrossEntropyChunkRows(c.VocabSize, outputF32);
        long logitsChunk = (long)chunkRows * c.VocabSize * 4 + chunkRows * 8L;
        long saved = rank > 0 ? AdapterSavedBytes(c, sequenceLength * microBatch, rank) : 0;
        long Activations(bool checkpointing) =>
            LlamaActivations.ByteCount(c, microBatch, sequenceLength, checkpointing, Math.Max(rank, 1)) + logitsChunk + saved;
        long workspace = RuntimeBytes + Math.Max(1, threads) * Core.Kernels.MatMul.ScratchBytesPerThread;
        long perParameter = 4L * (2 + (stateFloats ?? OptimizerStateFloats(optimizer)));   // value, gradient, state
        long dora = 0;
        foreach (var (o, i, r) in doraModules ?? []) dora += DoraBufferBytes(o, i, r, sequenceLength * microBatch);
        return new LoraMemoryEstimate(rank, sequenceLength, microBatch, baseWeightBytes, trainableParameters, trainableParameters * perParameter,
            Activations(false), Activations(true), workspace, dora, optimizer);
    }

    /// <summary>
    /// Bytes the model would hold for its base weights with each tensor in <paramref name="dtypeOf"/>'s type: a matrix
    /// in its type's bytes (an f32 matrix as forward panels, rows rounded up to 32), vectors in f32; a tied embedding
    /// once (f32: only as the output projection's panels; compressed: read in place by the output projection).
    /// </summary>
    /// <param name="modulesToSave">PEFT modules_to_save (embed_tokens, lm_head) trained in full: their f32 copies count
    /// as trainable parameters (<see cref="ModulesToSaveParameters"/>), not here; what stays frozen is held as
    /// LlamaModel.TrainModulesToSave leaves it (a trained head as new f32 panels; a tied model's lookup table kept or
    /// made beside it).</param>
    public static long HeldBaseWeightBytes(LlamaConfig c, IEnumerable<(string Name, int[] Shape)> tensors, Func<string, DType> dtypeOf,
        IReadOnlyList<string>? modulesToSave = null)
    {
        var list = tensors.ToList();
        bool tied = c.TieWordEmbeddings || !list.Exists(t => t.Name == Models.Loading.TensorNames.LmHead);   // as LlamaModel.FromTensors decides
        long bytes = 0;
        foreach (var (name, shape) in list)
        {
            var dtype = dtypeOf(name);
            if (shape.Length != 2) { bytes += 4L * shape.Aggregate(1L, (a, d) => a * d); continue; }
            bool panels = dtype == DType.F32 && (name != Models.Loading.TensorNames.Embedding || tied);
            long rows = panels ? (shape[0] + 31L) / 32 * 32 : shape[0];
            bytes += DTypeInfo.ByteCount(dtype, rows * shape[1]);
        }
        var modules = LlamaModel.NormalizeModulesToSave(modulesToSave ?? []);
        if (modules.Length == 0) return bytes;
        bool embed = modules.Contains("embed_tokens"), head = modules.Contains("lm_head");
        long V = c.VocabSize, C = c.HiddenSize, f32Panels = (V + 31) / 32 * 32 * C * 4;
        var embedDType = dtypeOf(Models.Loading.TensorNames.Embedding);
        if (!tied)
        {
            // The trained embedding replaces the frozen one; the trained head's panels replace the stored head.
            if (embed) bytes -= DTypeInfo.ByteCount(embedDType, V * C);
            if (head)
            {
                var headDType = dtypeOf(Models.Loading.TensorNames.LmHead);
                bytes += f32Panels - (headDType == DType.F32 ? f32Panels : DTypeInfo.ByteCount(headDType, V * C));
            }
        }
        else if (head)
        {
            // Untied by training the head: new f32 panels for it; the lookup keeps its table (f32: a plain V x C table
            // instead of reading the old panels), unless embed_tokens trains it too (then it is a trainable copy).
            if (embedDType != DType.F32) bytes += f32Panels - (embed ? DTypeInfo.ByteCount(embedDType, V * C) : 0);
            else if (!embed) bytes += 4 * V * C;
        }
        // tied, embed_tokens alone: the frozen head keeps the held embedding (f32 panels or the compressed matrix).
        return bytes;
    }

    /// <summary>Parameters modules_to_save trains in full: vocab × hidden for each of embed_tokens and lm_head.</summary>
    public static long ModulesToSaveParameters(LlamaConfig c, IReadOnlyList<string>? modulesToSave) =>
        LlamaModel.NormalizeModulesToSave(modulesToSave ?? []).Length * (long)c.VocabSize * c.HiddenSize;
}
