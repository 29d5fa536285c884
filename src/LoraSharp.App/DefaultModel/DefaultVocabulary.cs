// The default model's vocabulary: SentencePiece-style, one piece per printable ASCII character ("▁" for space),
// byte fallback for everything else, and <unk>/<s>/</s>. Character-level keeps digits separate, which suits
// number tasks, and needs no trained merges. Written into the model's GGUF file as tokenizer.ggml.* metadata.
using LoraSharp.Formats.Gguf;

namespace LoraSharp.App.DefaultModel;

/// <summary>The default model's tokenizer arrays.</summary>
public static class DefaultVocabulary
{
    /// <summary>Pieces by id.</summary>
    public static string[] Tokens { get; } = Build();

    private static string[] Build()
    {
        var t = new List<string> { "<unk>", "<s>", "</s>" };
        for (int b = 0; b < 256; b++) t.Add($"<0x{b:X2}>");
        t.Add("\u2581");
        for (char c = '!'; c <= '~'; c++) t.Add(c.ToString());
        return [.. t];
    }

    /// <summary>GGUF token types: 2 unknown, 3 control, 6 byte, 1 normal.</summary>
    public static int[] TokenTypes => Tokens.Select((p, i) => i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1).ToArray();

    /// <summary>The tokenizer.ggml.* metadata.</summary>
    public static IEnumerable<KeyValuePair<string, GgufValue>> GgufMetadata() =>
    [
        new("tokenizer.ggml.model", GgufValue.From("llama")),
        new("tokenizer.ggml.pre", GgufValue.From("default")),
        new("tokenizer.ggml.tokens", GgufValue.From(Tokens)),
        new("tokenizer.ggml.scores", GgufValue.From(new float[Tokens.Length])),
        new("tokenizer.ggml.token_type", GgufValue.From(TokenTypes)),
        new("tokenizer.ggml.bos_token_id", GgufValue.From(1u)),
        new("tokenizer.ggml.eos_token_id", GgufValue.From(2u)),
        new("tokenizer.ggml.unknown_token_id", GgufValue.From(0u)),
        new("tokenizer.ggml.add_bos_token", GgufValue.From(true)),
        new("tokenizer.ggml.add_eos_token", GgufValue.From(false)),
        new("tokenizer.ggml.add_space_prefix", GgufValue.From(true)),
    ];
}
