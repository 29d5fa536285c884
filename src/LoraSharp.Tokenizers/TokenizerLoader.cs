// Loads a tokenizer from files: Hugging Face tokenizer.json (+ tokenizer_config.json beside it), or GPT-2-style
// encoder.json/vocab.json + vocab.bpe/merges.txt. GGUF vocabularies are not read here (Tokenizers knows no file format
// beyond these JSON/text files): LoraSharp.Models reads the GGUF metadata and calls SentencePieceBpe.FromVocabulary or
// ByteLevelBpe.FromVocabulary. Supported tokenizer.json: model.type BPE with the normalizers/pre-tokenizers/decoders
// Llama/Mistral/Phi-3/GPT-2/Llama-3/Qwen2/SmolLM use (see docs/tokenizers.md); anything else is refused by name.
using System.Text.Json;

namespace LoraSharp.Tokenizers;

/// <summary>Builds tokenizers from tokenizer files.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Loads from a path: a folder (holding tokenizer.json, or encoder.json/vocab.json + vocab.bpe/merges.txt),
    /// a tokenizer.json file, or an encoder.json/vocab.bpe file (its partner is looked up beside it).
    /// </summary>
    public static Tokenizer FromFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            string tj = Path.Combine(path, "tokenizer.json");
            if (File.Exists(tj)) return FromTokenizerJson(tj);
            var pair = FindPair(path);
            if (pair is { } p) return FromEncoderAndMerges(p.Encoder, p.Merges);
            throw new FileNotFoundException(
                $"No tokenizer in folder {path}: expected tokenizer.json, or encoder.json (vocab.json) with vocab.bpe (merges.txt).", tj);
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file {path} does not exist.", path);
        string name = Path.GetFileName(path).ToLowerInvariant();
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (name.EndsWith(".gguf", StringComparison.Ordinal))
            throw new TokenizerFormatException(
                $"{path} is a GGUF file: its vocabulary is read by LoraSharp.Models (GGUF metadata -> SentencePieceBpe.FromVocabulary / ByteLevelBpe.FromVocabulary).");
        if (name.EndsWith(".bpe", StringComparison.Ordinal) || name == "merges.txt" || name is "encoder.json" or "vocab.json")
        {
            var pair = FindPair(dir) ?? throw new FileNotFoundException(
                $"{path} needs its partner beside it: encoder.json (or vocab.json) and vocab.bpe (or merges.txt).");
            return FromEncoderAndMerges(pair.Encoder, pair.Merges);
        }
        if (name.EndsWith(".json", StringComparison.Ordinal)) return FromTokenizerJson(path);
        throw new TokenizerFormatException(
            $"{path}: unknown tokenizer file. Give tokenizer.json, encoder.json + vocab.bpe, or a folder holding them. " +
            "SentencePiece .model files are not read; convert them to tokenizer.json or use the GGUF vocabulary.");
    }

    private static (string Encoder, string Merges)? FindPair(string dir)
    {
        string? enc = new[] { "encoder.json", "vocab.json" }.Select(f => Path.Combine(dir, f)).FirstOrDefault(File.Exists);
        string? mer = new[] { "vocab.bpe", "merges.txt" }.Select(f => Path.Combine(dir, f)).FirstOrDefault(File.Exists);
        return enc is not null && mer is not null ? (enc, mer) : null;
    }

    /// <summary>
    /// Loads a GPT-2-style pair: encoder.json (piece -> id) and vocab.bpe (one "left right" merge per line, an optional
    /// "#version" first line). Pieces written &lt;|...|&gt; become special added tokens, and &lt;|endoftext|&gt; is BOS and EOS.
    /// </summary>
    /// <param name="encoderJsonPath">encoder.json / vocab.json.</param>
    /// <param name="vocabBpePath">vocab.bpe / merges.txt.</param>
    /// <param name="preTokenizer">GGUF-style pre name; null picks "llama-bpe" for vocabularies of 100k+ pieces (Llama-3,
    /// with ignore_merges) and "gpt2" otherwise.</param>
    /// <param name="addedTokens">Extra added tokens (e.g. Llama-3's &lt;|begin_of_text|&gt; at 128000), appended to the vocabulary.</param>
    public static ByteLevelBpe FromEncoderAndMerges(string encoderJsonPath, string vocabBpePath, string? preTokenizer = null,
        IEnumerable<AddedToken>? addedTokens = null)
    {
        var vocab = new List<(string Piece, int Id)>();
        using (var doc = ParseJson(encoderJsonPath))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw TokenizerFormatException.For(encoderJsonPath, "(root)", "must be an object mapping piece -> id.");
            foreach (var prop in doc.RootElement.EnumerateObject())
                vocab.Add((prop.Name, ReadId(prop.Value, encoderJsonPath, prop.Name)));
        }
        var extra = addedTokens?.ToList() ?? [];
        var pieces = BuildPieces(vocab, extra, encoderJsonPath, "(root)");
        var merges = new List<(string, string)>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(vocabBpePath))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            merges.Add(VocabularyChecks.SplitMerge(line, $"line {lineNo}", merges.Count, vocabBpePath));
        }
        var added = new List<AddedToken>(extra);
        foreach (var (p, id) in vocab)
            if (p.Length > 4 && p.StartsWith("<|", StringComparison.Ordinal) && p.EndsWith("|>", StringComparison.Ordinal) && added.All(a => a.Id != id))
                added.Add(new AddedToken(id, p));
        string pre = preTokenizer ?? (vocab.Count >= 100_000 ? "llama-bpe" : "gpt2");
        int eot = Array.IndexOf(pieces, "<|endoftext|>");
        return ByteLevelBpe.FromMerges(pieces, merges, added, pre, isRegex: false,
            ignoreMerges: pre is "llama-bpe" or "llama3", addPrefixSpace: false, mergesField: "merges", file: vocabBpePath,
            bosTokenId: eot, eosTokenId: eot);
    }

    /// <summary>Loads a Hugging Face tokenizer.json; tokenizer_config.json beside it (or at <paramref name="tokenizerConfigPath"/>)
    /// supplies add_bos_token/add_eos_token and the bos/eos/pad/unk tokens.</summary>
    public static Tokenizer FromTokenizerJson(string tokenizerJsonPath, string? tokenizerConfigPath = null)
    {
        string file = tokenizerJsonPath;
        tokenizerConfigPath ??= Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "tokenizer_config.json");
        using var doc = ParseJson(file);
        using var config = File.Exists(tokenizerConfigPath) ? ParseJson(tokenizerConfigPath) : null;
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw TokenizerFormatException.For(file, "(root)", "must be a JSON object.");
        var model = Require(root, "model", JsonValueKind.Object, file, "model");
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (type != "BPE")
            throw new TokenizerFormatException($"{file}: model.type '{type}' is not supported; only BPE models (Llama, Mistral, Phi-3, GPT-2, Llama-3, Qwen2) are.");

        var vocabEl = Require(model, "vocab", JsonValueKind.Object, file, "model.vocab");
        var vocab = new List<(string, int)>();
        foreach (var prop in vocabEl.EnumerateObject()) vocab.Add((prop.Name, ReadId(prop.Value, file, "model.vocab." + prop.Name)));

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind != JsonValueKind.Null)
        {
            if (at.ValueKind != JsonValueKind.Array) throw TokenizerFormatException.For(file, "added_tokens", "must be an array.");
            int i = 0;
            foreach (var e in at.EnumerateArray())
            {
                string f = $"added_tokens[{i++}]";
                if (e.ValueKind != JsonValueKind.Object) throw TokenizerFormatException.For(file, f, "must be an object.");
                int id = ReadId(Require(e, "id", JsonValueKind.Number, file, f + ".id"), file, f + ".id");
                string content = Require(e, "content", JsonValueKind.String, file, f + ".content").GetString()!;
                added.Add(new AddedToken(id, content, Bool(e, "special", true), Bool(e, "lstrip", false), Bool(e, "rstrip", false), Bool(e, "single_word", false)));
            }
        }
        var pieces = BuildPieces(vocab, added, file, "model.vocab");

        var merges = new List<(string, string)>();
        if (model.TryGetProperty("merges", out var me) && me.ValueKind != JsonValueKind.Null)
        {
            if (me.ValueKind != JsonValueKind.Array) throw TokenizerFormatException.For(file, "model.merges", "must be an array.");
            int i = 0;
            foreach (var m in me.EnumerateArray())
            {
                if (m.ValueKind == JsonValueKind.String) merges.Add(VocabularyChecks.SplitMerge(m.GetString()!, "model.merges", i, file));
                else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                    merges.Add((m[0].GetString()!, m[1].GetString()!));
                else throw TokenizerFormatException.For(file, $"model.merges[{i}]", "must be \"left right\" or [\"left\", \"right\"].");
                i++;
            }
        }

        // Special ids and BOS/EOS flags: tokenizer_config.json first, then the post_processor template.
        string? unkPiece = model.TryGetProperty("unk_token", out var ut) && ut.ValueKind == JsonValueKind.String ? ut.GetString() : null;
        var cfg = config?.RootElement;
        string? bosPiece = ConfigToken(cfg, "bos_token"), eosPiece = ConfigToken(cfg, "eos_token");
        string? padPiece = ConfigToken(cfg, "pad_token");
        unkPiece = ConfigToken(cfg, "unk_token") ?? unkPiece;
        var (templBos, templEos) = TemplateSpecials(root);
        bool addBos = ConfigBool(cfg, "add_bos_token") ?? templBos is not null;
        bool addEos = ConfigBool(cfg, "add_eos_token") ?? templEos is not null;
        bosPiece ??= templBos;
        eosPiece ??= templEos;
        int Id(string? piece, string field)
        {
            if (piece is null) return -1;
            int id = Array.IndexOf(pieces, piece);
            if (id < 0) throw TokenizerFormatException.For(tokenizerConfigPath, field, $"= \"{piece}\" is not in the vocabulary of {file}.");
            return id;
        }
        int bos = Id(bosPiece, "bos_token"), eos = Id(eosPiece, "eos_token"), pad = Id(padPiece, "pad_token"), unk = Id(unkPiece, "unk_token");

        root.TryGetProperty("pre_tokenizer", out var pre);
        root.TryGetProperty("normalizer", out var norm);
        root.TryGetProperty("decoder", out var dec);
        bool byteLevel = HasType(pre, "ByteLevel") || HasType(dec, "ByteLevel");
        if (byteLevel)
        {
            var (preName, isRegex, addPrefixSpace) = ByteLevelPre(pre, file);
            return ByteLevelBpe.FromMerges(pieces, merges, added, preName, isRegex, Bool(model, "ignore_merges", false),
                addPrefixSpace, "model.merges", file, bos, eos, unk, pad, addBos, addEos);
        }
        PrependScheme prepend = PrependScheme.Never;
        if (FindType(norm, "Prepend") is { } pp && pp.TryGetProperty("prepend", out var pv) && pv.ValueKind == JsonValueKind.String && pv.GetString() == "\u2581") prepend = PrependScheme.Always;
        if (FindType(pre, "Metaspace") is { } ms)
        {
            string scheme = ms.TryGetProperty("prepend_scheme", out var ps) && ps.ValueKind == JsonValueKind.String ? ps.GetString()!
                : Bool(ms, "add_prefix_space", true) ? "always" : "never";
            prepend = scheme switch { "always" => PrependScheme.Always, "first" => PrependScheme.First, _ => PrependScheme.Never };
        }
        bool strip = FindType(dec, "Strip") is { } st && st.TryGetProperty("start", out var s0) && s0.ValueKind == JsonValueKind.Number && s0.TryGetInt64(out long startChars) && startChars > 0
                     || (FindType(dec, "Metaspace") is not null && prepend != PrependScheme.Never);
        return SentencePieceBpe.FromMerges(pieces, merges, added, null, unk, Bool(model, "byte_fallback", false),
            Bool(model, "fuse_unk", false), prepend, strip, "model.merges", file, bos, eos, pad, addBos, addEos);
    }

    // ---------------- helpers ----------------

    private static JsonDocument ParseJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file {path} does not exist.", path);
        byte[] bytes = File.ReadAllBytes(path);
        // JsonDocument checks string contents only when they are read (GetString throws InvalidOperationException then).
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw TokenizerFormatException.For(path, "(json)", "is not valid UTF-8 text; re-save the file as UTF-8.");
        try
        {
            var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, MaxDepth = 256 });
            if (!AllStringsValid(doc.RootElement) && FirstInvalidString(doc.RootElement, "$") is { } bad)
            {
                doc.Dispose();
                throw TokenizerFormatException.For(path, bad, "is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair).");
            }
            return doc;
        }
        catch (JsonException e)
        {
            throw TokenizerFormatException.For(path, "(json)", $"is not valid JSON: {e.Message}", e);
        }
    }

    private static bool AllStringsValid(JsonElement e)
    {
        try { Touch(e); return true; }
        catch (InvalidOperationException) { return false; }

        static void Touch(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object: foreach (var p in e.EnumerateObject()) { _ = p.Name; Touch(p.Value); } break;
                case JsonValueKind.Array: foreach (var item in e.EnumerateArray()) Touch(item); break;
                case JsonValueKind.String: _ = e.GetString(); break;
            }
        }
    }

    // JsonDocument checks escapes only when a string is read ("\ud800" parses, GetString throws InvalidOperationException):
    // the path of the first property name or string that is not valid Unicode, or null.
    private static string? FirstInvalidString(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try { name = p.Name; }
                    catch (InvalidOperationException) { return path + ".<name>"; }
                    if (FirstInvalidString(p.Value, path + "." + name) is { } bad) return bad;
                }
                return null;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                    if (FirstInvalidString(item, $"{path}[{i++}]") is { } bad) return bad;
                return null;
            case JsonValueKind.String:
                try { _ = e.GetString(); return null; }
                catch (InvalidOperationException) { return path; }
            default:
                return null;
        }
    }

    private static JsonElement Require(JsonElement obj, string name, JsonValueKind kind, string file, string field)
    {
        if (!obj.TryGetProperty(name, out var v)) throw TokenizerFormatException.For(file, field, "is missing.");
        if (v.ValueKind != kind && !(kind == JsonValueKind.Number && v.ValueKind == JsonValueKind.Number))
            throw TokenizerFormatException.For(file, field, $"must be a JSON {kind.ToString().ToLowerInvariant()}, not {v.ValueKind.ToString().ToLowerInvariant()}.");
        return v;
    }

    private static int ReadId(JsonElement v, string file, string field)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int id) || id < 0)
            throw TokenizerFormatException.For(file, field, $"must be a non-negative integer id, not {v.GetRawText()}.");
        return id;
    }

    private static bool Bool(JsonElement obj, string name, bool dflt) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean() : dflt;

    private static string[] BuildPieces(List<(string Piece, int Id)> vocab, List<AddedToken> added, string file, string field)
    {
        int size = 0;
        foreach (var (_, id) in vocab) size = Math.Max(size, id + 1);
        foreach (var a in added) size = Math.Max(size, a.Id + 1);
        if (size > 10_000_000) throw TokenizerFormatException.For(file, field, $"has an id of {size - 1}; vocabularies above 10M entries are refused.");
        // Ids number the pieces 0..N-1 (real files have no gaps); a lone huge id must not make us allocate its range.
        if (size > 2L * (vocab.Count + added.Count) + 1024)
            throw TokenizerFormatException.For(file, field, $"has an id of {size - 1} but only {vocab.Count + added.Count} pieces; ids must number the pieces 0..N-1 without large gaps.");
        var pieces = new string[size];
        foreach (var (p, id) in vocab)
        {
            if (pieces[id] is not null && pieces[id] != p)
                throw TokenizerFormatException.For(file, field, $"gives id {id} to both \"{pieces[id]}\" and \"{p}\".");
            pieces[id] = p;
        }
        foreach (var a in added) pieces[a.Id] ??= a.Content;
        for (int i = 0; i < size; i++) pieces[i] ??= "";
        return pieces;
    }

    private static string? ConfigToken(JsonElement? cfg, string name)
    {
        if (cfg is not { ValueKind: JsonValueKind.Object } c || !c.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
            return content.GetString();
        return null;
    }

    private static bool? ConfigBool(JsonElement? cfg, string name) =>
        cfg is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean() : null;

    /// <summary>The special tokens a TemplateProcessing post-processor puts before and after a single sequence.</summary>
    private static (string? Bos, string? Eos) TemplateSpecials(JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || FindType(pp, "TemplateProcessing") is not { } tp) return (null, null);
        if (!tp.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) return (null, null);
        string? bos = null, eos = null;
        bool seenSequence = false;
        foreach (var item in single.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object) continue;
            if (item.TryGetProperty("Sequence", out _)) seenSequence = true;
            else if (item.TryGetProperty("SpecialToken", out var st) && st.ValueKind == JsonValueKind.Object && st.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            {
                if (seenSequence) eos ??= id.GetString(); else bos ??= id.GetString();
            }
        }
        return (bos, eos);
    }

    private static bool HasType(JsonElement el, string type) => FindType(el, type) is not null;

    /// <summary>The first object with "type": type in el, looking into Sequence's normalizers/pretokenizers/decoders.</summary>
    private static JsonElement? FindType(JsonElement el, string type)
    {
        if (el.ValueKind != JsonValueKind.Object) return null;
        if (el.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == type) return el;
        foreach (string list in new[] { "normalizers", "pretokenizers", "decoders", "processors" })
            if (el.TryGetProperty(list, out var arr) && arr.ValueKind == JsonValueKind.Array)
                foreach (var item in arr.EnumerateArray())
                    if (FindType(item, type) is { } hit) return hit;
        return null;
    }

    private static (string Name, bool IsRegex, bool AddPrefixSpace) ByteLevelPre(JsonElement pre, string file)
    {
        var bl = FindType(pre, "ByteLevel");
        bool addPrefix = bl is { } b && Bool(b, "add_prefix_space", false);
        bool useRegex = bl is not { } b2 || Bool(b2, "use_regex", true);
        if (FindType(pre, "Split") is { } split)
        {
            if (!split.TryGetProperty("pattern", out var pat) || pat.ValueKind != JsonValueKind.Object)
                throw TokenizerFormatException.For(file, "pre_tokenizer.Split.pattern", "is missing.");
            if (pat.TryGetProperty("Regex", out var rx) && rx.ValueKind == JsonValueKind.String)
            {
                string behavior = split.TryGetProperty("behavior", out var bh) && bh.ValueKind == JsonValueKind.String ? bh.GetString()! : "Isolated";
                if (behavior != "Isolated" || Bool(split, "invert", false))
                    throw new TokenizerFormatException($"{file}: pre_tokenizer Split with behavior '{behavior}' (invert {Bool(split, "invert", false)}) is not supported; only Isolated.");
                if (useRegex)
                    throw new TokenizerFormatException($"{file}: pre_tokenizer has both a Split regex and ByteLevel use_regex=true; not supported.");
                return (rx.GetString()!, true, addPrefix);
            }
            throw new TokenizerFormatException($"{file}: pre_tokenizer Split with a String pattern is not supported.");
        }
        if (FindType(pre, "Digits") is { } digits)
        {
            if (!Bool(digits, "individual_digits", false) || !useRegex)
                throw new TokenizerFormatException($"{file}: pre_tokenizer Digits without individual_digits (or without ByteLevel use_regex) is not supported.");
            return ("smollm", false, addPrefix);
        }
        if (!useRegex)
            throw new TokenizerFormatException($"{file}: pre_tokenizer ByteLevel with use_regex=false and no Split pattern is not supported.");
        return ("gpt2", false, addPrefix);
    }
}
