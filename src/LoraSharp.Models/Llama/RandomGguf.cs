// A random-weight GGUF file of a given Llama shape: RandomWeights (seeded) under GGUF tensor names, "llama"
// architecture metadata (LlamaConfigWriter) and a synthetic SentencePiece-style vocabulary that llama.cpp loads
// (<unk>, <s>, </s>, the 256 byte pieces <0x00>..<0xFF>, then "t{id}" pieces), written by GgufWriter. For
// benchmarks that load the same file in LoraSharp and in llama.cpp and feed token ids directly: the text the
// vocabulary decodes to is meaningless. Matrices are F32, F16, Q8_0 or Q4_0 (norms stay F32); a tied model has
// no output.weight. Rows are random, so q/k need no permutation into GGUF's interleaved rotary order (any row
// order of random rows is equally random); LoraSharp's loader permutes them back to HF order as for any GGUF.
using LoraSharp.Core.Tensors;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Loading;

namespace LoraSharp.Models.Llama;

/// <summary>Writes random-weight GGUF files.</summary>
public static class RandomGguf
{
    /// <summary>Special and byte pieces ahead of the synthetic ones: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, &lt;0x00&gt;..&lt;0xFF&gt;.</summary>
    public const int ReservedTokens = 3 + 256;

    /// <summary>Writes a <paramref name="config"/>-shaped model with <paramref name="matrices"/> weights (seeded) to <paramref name="path"/>.</summary>
    public static void Write(string path, LlamaConfig config, DType matrices, int seed = 0, float std = 0.02f)
    {
        if (config.VocabSize < ReservedTokens + 1)
            throw new ArgumentException($"A random GGUF needs a vocabulary of at least {ReservedTokens + 1} tokens (special and byte pieces); the config has {config.VocabSize}.");
        uint fileType = matrices switch
        {
            DType.F32 => 0u, DType.F16 => 1u, DType.Q4_0 => 2u, DType.Q8_0 => 7u,   // llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0
            _ => throw new NotSupportedException($"Random GGUF matrices of {matrices} are not supported (F32, F16, Q8_0, Q4_0)."),
        };
        var metadata = LlamaConfigWriter.ToGguf(config, $"random-{config.HiddenSize}x{config.NumHiddenLayers}-{matrices}", fileType);
        metadata.AddRange(Vocabulary(config.VocabSize));

        var weights = RandomWeights.Create(config, seed, matrices, std);
        try
        {
            var named = weights.Select(p => new KeyValuePair<string, Tensor>(
                TensorNames.HfToGguf(p.Key) ?? throw new InvalidOperationException($"Tensor '{p.Key}' has no GGUF name."), p.Value));
            // token_embd first, then the blocks in order, then output_norm (and output): the order converters write.
            GgufWriter.Write(path, metadata, named
                .OrderBy(p => p.Key.StartsWith("token_embd", StringComparison.Ordinal) ? 0 : p.Key.StartsWith("blk.", StringComparison.Ordinal) ? 1 : 2)
                .ThenBy(p => p.Key.StartsWith("blk.", StringComparison.Ordinal) ? int.Parse(p.Key.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture) : 0)
                .ThenBy(p => p.Key, StringComparer.Ordinal));
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>tokenizer.ggml.* for a synthetic SentencePiece ("llama") vocabulary of <paramref name="size"/> pieces.</summary>
    public static List<KeyValuePair<string, GgufValue>> Vocabulary(int size)
    {
        var tokens = new string[size];
        var scores = new float[size];
        var types = new int[size];   // NORMAL 1, UNKNOWN 2, CONTROL 3, BYTE 6
        tokens[0] = "<unk>"; types[0] = 2;
        tokens[1] = "<s>"; types[1] = 3;
        tokens[2] = "</s>"; types[2] = 3;
        for (int b = 0; b < 256; b++)
        {
            tokens[3 + b] = $"<0x{b:X2}>";
            types[3 + b] = 6;
        }
        for (int i = ReservedTokens; i < size; i++)
        {
            tokens[i] = $"t{i}";
            types[i] = 1;
            scores[i] = -(i - ReservedTokens);
        }
        return
        [
            new("tokenizer.ggml.model", GgufValue.From("llama")),
            new("tokenizer.ggml.pre", GgufValue.From("default")),
            new("tokenizer.ggml.tokens", GgufValue.From(tokens)),
            new("tokenizer.ggml.scores", GgufValue.From(scores)),
            // Explicit element type: GgufValue.From(int[]) is matched by its uint[] case (CLR array variance).
            new("tokenizer.ggml.token_type", new GgufValue(GgufValueType.Array, types, GgufValueType.Int32)),
            new("tokenizer.ggml.unknown_token_id", GgufValue.From(0u)),
            new("tokenizer.ggml.bos_token_id", GgufValue.From(1u)),
            new("tokenizer.ggml.eos_token_id", GgufValue.From(2u)),
            new("tokenizer.ggml.add_bos_token", GgufValue.From(true)),
            new("tokenizer.ggml.add_eos_token", GgufValue.From(false)),
        ];
    }
}
