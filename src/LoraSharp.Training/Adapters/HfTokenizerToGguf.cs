// GGUF tokenizer metadata (tokenizer.ggml.*) for a SentencePiece-style Llama tokenizer described by a Hugging Face
// tokenizer.json (model BPE with byte_fallback, as transformers' LlamaConverter writes it): tokens by id, token
// types (special → CONTROL 3, unk → UNKNOWN 2, <0xXX> → BYTE 6, other added tokens → USER_DEFINED 4, the rest
// NORMAL 1), and scores. tokenizer.json keeps merge ranks, not SentencePiece scores, so each piece's score is minus
// the rank of the first merge that produces it (higher score = earlier merge, which is the order GGUF "llama"
// tokenizers merge in); pieces no merge produces get 0 when they are one character long, else -1e9 (never merged).
// Byte-level BPE (GPT-2 style) tokenizers are refused: their GGUF form needs a pre-tokenizer name LoraSharp cannot
// infer. Not here: reading GGUF vocabularies (GgufTokenizer).
using System.Text.Json;
using LoraSharp.Formats.Gguf;
using LoraSharp.Models;

namespace LoraSharp.Training.Adapters;

/// <summary>Builds GGUF tokenizer metadata from tokenizer.json.</summary>
public static class HfTokenizerToGguf
{
    /// <summary>The tokenizer.ggml.* key/values for <paramref name="tokenizerJson"/> (and tokenizer_config.json when present).</summary>
    public static IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata(string tokenizerJson, string tokenizerConfigJson, LlamaConfig config)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(tokenizerJson));
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
        if (type != "BPE" || !byteFallback)
            throw new Core.UserErrorException(
                $"{tokenizerJson}: only SentencePiece-style BPE tokenizers (model BPE with byte_fallback) can be converted to GGUF metadata; " +
                "this one is byte-level BPE or another model. Merge into a GGUF base instead, or merge to --format hf.");

        var vocab = new Dictionary<int, string>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) vocab[p.Value.GetInt32()] = p.Name;
        var special = new HashSet<int>();
        var userDefined = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var added))
            foreach (var a in added.EnumerateArray())
            {
                int id = a.GetProperty("id").GetInt32();
                vocab[id] = a.GetProperty("content").GetString()!;
                if (a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True) special.Add(id); else userDefined.Add(id);
            }
        int n = Math.Max(config.VocabSize, vocab.Count == 0 ? 0 : vocab.Keys.Max() + 1);
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        var byPiece = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            tokens[i] = vocab.TryGetValue(i, out var s) ? s : $"[PAD{i}]";
            byPiece.TryAdd(tokens[i], i);
            types[i] = vocab.ContainsKey(i) ? 1 : 5;
        }
        string? unk = model.TryGetProperty("unk_token", out var u) ? u.GetString() : null;
        for (int i = 0; i < n; i++)
        {
            string p = tokens[i];
            if (special.Contains(i)) types[i] = 3;
            else if (userDefined.Contains(i)) types[i] = 4;
            if (p == unk) types[i] = 2;
            else if (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p.EndsWith('>')) types[i] = 6;
            scores[i] = types[i] == 1 && System.Globalization.StringInfo.ParseCombiningCharacters(p).Length > 1 ? -1e9f : 0f;
        }
        int rank = 0;
        foreach (var m in model.GetProperty("merges").EnumerateArray())
        {
            string merged = m.ValueKind == JsonValueKind.Array
                ? m[0].GetString() + m[1].GetString()
                : (m.GetString() ?? "").Replace(" ", "", StringComparison.Ordinal);
            if (byPiece.TryGetValue(merged, out int id) && scores[id] <= -1e9f) scores[id] = -rank;
            rank++;
        }

        bool addBos = true, addEos = false;
        string? bosText = null, eosText = null, padText = null;
        if (File.Exists(tokenizerConfigJson))
        {
            using var tc = JsonDocument.Parse(File.ReadAllText(tokenizerConfigJson));
            var r = tc.RootElement;
            if (r.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False) addBos = ab.GetBoolean();
            if (r.TryGetProperty("add_eos_token", out var ae) && ae.ValueKind is JsonValueKind.True or JsonValueKind.False) addEos = ae.GetBoolean();
            bosText = TokenText(r, "bos_token");
            eosText = TokenText(r, "eos_token");
            padText = TokenText(r, "pad_token");
        }
        int Id(string? text, int? fallback) => text != null && byPiece.TryGetValue(text, out int id) ? id : fallback ?? -1;
        bool prependSpace = root.TryGetProperty("normalizer", out var norm) && norm.GetRawText().Contains("Prepend", StringComparison.Ordinal);

        var list = new List<KeyValuePair<string, GgufValue>>
        {
            new("tokenizer.ggml.model", GgufValue.From("llama")),
            new("tokenizer.ggml.pre", GgufValue.From("default")),
            new("tokenizer.ggml.tokens", GgufValue.From(tokens)),
            new("tokenizer.ggml.scores", GgufValue.From(scores)),
            // Explicit element type: GgufValue.From(int[]) is matched by its uint[] case (CLR array variance).
            new("tokenizer.ggml.token_type", new GgufValue(GgufValueType.Array, types, GgufValueType.Int32)),
        };
        int bos = Id(bosText, config.BosTokenId), eos = Id(eosText, config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null);
        int unkId = unk != null && byPiece.TryGetValue(unk, out int ui) ? ui : -1, pad = Id(padText, config.PadTokenId);
        if (bos >= 0) list.Add(new("tokenizer.ggml.bos_token_id", GgufValue.From((uint)bos)));
        if (eos >= 0) list.Add(new("tokenizer.ggml.eos_token_id", GgufValue.From((uint)eos)));
        // The end-of-turn token of chat vocabularies, so llama.cpp and Ollama stop where a chat fine-tune learned to.
        int eot = EndOfTurnTokens.Select(t => Id(t, null)).FirstOrDefault(i => i >= 0, -1);
        if (eot >= 0) list.Add(new("tokenizer.ggml.eot_token_id", GgufValue.From((uint)eot)));
        if (unkId >= 0) list.Add(new("tokenizer.ggml.unknown_token_id", GgufValue.From((uint)unkId)));
        if (pad >= 0) list.Add(new("tokenizer.ggml.padding_token_id", GgufValue.From((uint)pad)));
        list.Add(new("tokenizer.ggml.add_bos_token", GgufValue.From(addBos)));
        list.Add(new("tokenizer.ggml.add_eos_token", GgufValue.From(addEos)));
        list.Add(new("tokenizer.ggml.add_space_prefix", GgufValue.From(prependSpace)));
        // The model's chat template travels with it, as llama.cpp's converter writes it.
        if (File.Exists(tokenizerConfigJson) && Tokenizers.Chat.ModelChatTemplate.FromTokenizerConfig(tokenizerConfigJson) is { } chat)
            list.Add(new("tokenizer.chat_template", GgufValue.From(chat.Source)));
        return list;
    }

    /// <summary>End-of-turn markers (Llama 3, ChatML, Gemma, Phi-3), in the order they are looked for in the vocabulary.</summary>
    public static IReadOnlyList<string> EndOfTurnTokens { get; } = ["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"];

    private static string? TokenText(JsonElement r, string key) =>
        !r.TryGetProperty(key, out var v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) ? c.GetString() : null;
}
