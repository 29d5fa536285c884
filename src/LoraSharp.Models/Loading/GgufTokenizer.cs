// Builds a tokenizer from GGUF metadata (tokenizer.ggml.*): the Tokenizers assembly takes plain arrays, this
// file reads them out of the GGUF key/values. "llama" = SentencePiece-style BPE by score; "gpt2" = byte-level
// BPE by merges with the pre-tokenizer named by tokenizer.ggml.pre.
using LoraSharp.Formats.Gguf;
using LoraSharp.Tokenizers;

namespace LoraSharp.Models.Loading;

/// <summary>Tokenizers from GGUF metadata.</summary>
public static class GgufTokenizer
{
    /// <summary>The tokenizer described by <paramref name="metadata"/>; <paramref name="source"/> names the file in errors.</summary>
    public static Tokenizer FromMetadata(IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, string source)
    {
        var kv = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        foreach (var (k, v) in metadata) kv[k] = v;
        GgufValue Require(string key) => kv.TryGetValue(key, out var v) ? v
            : throw new Formats.ModelFormatException(source, null, $"GGUF key '{key}' is missing, so the file holds no usable vocabulary.");
        // A value of the wrong GGUF type (or an id beyond int) names its key instead of surfacing as InvalidCastException.
        T As<T>(string key, GgufValue v, Func<GgufValue, T> read)
        {
            try { return read(v); }
            catch (Exception e) when (e is InvalidCastException or OverflowException)
            {
                throw new Formats.ModelFormatException(source, key, $"has the wrong type {v.Type}{(v.Type == GgufValueType.Array ? "/" + v.ElementType : "")}, which is not usable here: {e.Message}", e);
            }
        }
        int Id(string key) => kv.TryGetValue(key, out var v) ? As(key, v, x => checked((int)x.AsInt64())) : -1;
        bool Flag(string key, bool fallback) => kv.TryGetValue(key, out var v) ? As(key, v, x => x.AsBool()) : fallback;
        T[] Array<T>(string key) => As(key, Require(key), x => x.AsArray<T>());

        string model = As("tokenizer.ggml.model", Require("tokenizer.ggml.model"), x => x.AsString());
        var tokens = Array<string>("tokenizer.ggml.tokens");
        int[]? types = kv.TryGetValue("tokenizer.ggml.token_type", out var tt) ? As("tokenizer.ggml.token_type", tt, x => x.AsArray<int>()) : null;
        int bos = Id("tokenizer.ggml.bos_token_id"), eos = Id("tokenizer.ggml.eos_token_id");
        int unk = Id("tokenizer.ggml.unknown_token_id"), pad = Id("tokenizer.ggml.padding_token_id");
        try
        {
            return model switch
            {
                "llama" => SentencePieceBpe.FromVocabulary(tokens, Array<float>("tokenizer.ggml.scores"), types,
                    bos, eos, unk, pad, Flag("tokenizer.ggml.add_bos_token", true), Flag("tokenizer.ggml.add_eos_token", false),
                    Flag("tokenizer.ggml.add_space_prefix", true)),
                "gpt2" => ByteLevelBpe.FromVocabulary(tokens, Array<string>("tokenizer.ggml.merges"), types,
                    kv.TryGetValue("tokenizer.ggml.pre", out var pre) ? As("tokenizer.ggml.pre", pre, x => x.AsString()) : null,
                    bos, eos, unk, pad, Flag("tokenizer.ggml.add_bos_token", false), Flag("tokenizer.ggml.add_eos_token", false)),
                _ => throw new Formats.ModelFormatException(source, null, $"tokenizer.ggml.model '{model}' is not supported (llama and gpt2 are)."),
            };
        }
        catch (TokenizerFormatException e)
        {
            throw new Formats.ModelFormatException(source, null, e.Message, e);
        }
        catch (Exception e) when (e is InvalidCastException or OverflowException)
        {
            // a tokenizer.ggml.* key of the wrong type (GgufValue's As* methods)
            throw new Formats.ModelFormatException(source, null, $"a tokenizer.ggml key has the wrong type: {e.Message}", e);
        }
    }

    /// <summary>The tokenizer of a loaded model: tokenizer.json (or vocab files) in an HF folder, or the GGUF vocabulary.</summary>
    public static Tokenizer ForModel(LoadedModel model)
    {
        if (model.GgufMetadata is { } meta) return FromMetadata(meta, model.SourcePath);
        // A model given as one of its .safetensors files (a bf16 variant beside the f32 one) reads its folder's tokenizer.
        string source = File.Exists(model.SourcePath) && model.SourcePath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
            ? Path.GetDirectoryName(model.SourcePath)! : model.SourcePath;
        return TokenizerLoader.FromFile(source);
    }
}
