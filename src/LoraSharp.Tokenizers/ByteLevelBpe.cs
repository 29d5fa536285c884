// Byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM): the text is cut into words by the model's pre-tokenizer pattern,
// each word's UTF-8 bytes are mapped to printable characters by GPT-2's byte-to-unicode table ("Ġ" is the space byte),
// and adjacent pairs merge by rank. Words are cached. With ignore_merges (Llama-3, tiktoken) a word that is itself in
// the vocabulary is taken whole. It does not implement BPE dropout, continuing_subword_prefix or end_of_word_suffix.
using System.Text;
using System.Runtime.CompilerServices;

namespace LoraSharp.Tokenizers;

/// <summary>Byte-level BPE.</summary>
public sealed class ByteLevelBpe : Tokenizer
{
    private const int MaxCachedWord = 128;

    private readonly BpeMerges _merges;
    private readonly PreTokenizer _pre;
    private readonly int[] _byteIds = new int[256];
    private readonly byte[][] _pieceBytes;
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabLookup;

    /// <summary>The pre-tokenizer pattern's name (gpt2, llama-bpe, qwen2, smollm, or regex:...).</summary>
    public string PreTokenizerName => _pre.Name;

    /// <summary>A word that is a vocabulary piece is taken whole (HF <c>ignore_merges</c>; Llama-3).</summary>
    public bool IgnoreMerges { get; }

    /// <summary>A space is put before text that does not start with one (HF ByteLevel <c>add_prefix_space</c>).</summary>
    public bool AddPrefixSpace { get; }

    private ByteLevelBpe(string[] pieces, BpeMerges merges, IEnumerable<AddedToken> added, PreTokenizer pre,
        bool ignoreMerges, bool addPrefixSpace) : base(pieces, added)
    {
        _merges = merges;
        _pre = pre;
        IgnoreMerges = ignoreMerges;
        AddPrefixSpace = addPrefixSpace;
        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        _vocabLookup = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int b = 0; b < 256; b++)
            _byteIds[b] = _vocab.TryGetValue(ByteLevelMap.ByteToChar[b].ToString(), out int id) ? id : -1;
        _pieceBytes = new byte[pieces.Length][];
        for (int id = 0; id < pieces.Length; id++) _pieceBytes[id] = ByteLevelMap.PieceToBytes(pieces[id]);
    }

    /// <summary>
    /// Builds the tokenizer from a GGUF-style vocabulary (<c>tokenizer.ggml.model = "gpt2"</c>).
    /// </summary>
    /// <param name="tokens">tokenizer.ggml.tokens: byte-level pieces, id = index.</param>
    /// <param name="merges">tokenizer.ggml.merges: "left right", best first.</param>
    /// <param name="tokenTypes">tokenizer.ggml.token_type; control tokens become special added tokens, user-defined ones
    /// non-special added tokens. Null: no added tokens.</param>
    /// <param name="preTokenizerName">tokenizer.ggml.pre: "default"/"gpt2", "llama-bpe", "qwen2", "smollm", ... (see docs/tokenizers.md).</param>
    /// <param name="bosTokenId">tokenizer.ggml.bos_token_id, or -1.</param>
    /// <param name="eosTokenId">tokenizer.ggml.eos_token_id, or -1.</param>
    /// <param name="unkTokenId">tokenizer.ggml.unknown_token_id, or -1.</param>
    /// <param name="padTokenId">tokenizer.ggml.padding_token_id, or -1.</param>
    /// <param name="addBos">tokenizer.ggml.add_bos_token (default false).</param>
    /// <param name="addEos">tokenizer.ggml.add_eos_token (default false).</param>
    /// <param name="ignoreMerges">Take whole-word vocabulary hits; null means true for the Llama-3 pattern, as llama.cpp does.</param>
    public static ByteLevelBpe FromVocabulary(string[] tokens, string[] merges, int[]? tokenTypes, string? preTokenizerName,
        int bosTokenId = -1, int eosTokenId = -1, int unkTokenId = -1, int padTokenId = -1,
        bool addBos = false, bool addEos = false, bool? ignoreMerges = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        var types = VocabularyChecks.Types(tokens, tokenTypes ?? new int[tokens.Length].Select(_ => 1).ToArray());
        VocabularyChecks.Ids(tokens.Length, bosTokenId, eosTokenId, unkTokenId, padTokenId);
        var pairs = new (string, string)[merges.Length];
        for (int i = 0; i < merges.Length; i++)
            pairs[i] = VocabularyChecks.SplitMerge(merges[i] ?? "", "tokenizer.ggml.merges", i, null);
        var pre = PreTokenizer.FromGgufName(preTokenizerName);
        var table = VocabularyChecks.RankedMerges(tokens, pairs, "tokenizer.ggml.merges");
        return new ByteLevelBpe(tokens, table, VocabularyChecks.AddedFromTypes(tokens, types), pre,
            ignoreMerges ?? pre.IgnoreMerges, addPrefixSpace: false)
        {
            BosTokenId = bosTokenId, EosTokenId = eosTokenId, UnkTokenId = unkTokenId, PadTokenId = padTokenId,
            AddBos = addBos, AddEos = addEos,
        };
    }

    /// <summary>
    /// Builds the tokenizer from pieces and ranked merges (tokenizer.json, or encoder.json + vocab.bpe).
    /// </summary>
    /// <param name="tokens">Pieces by id (holes may be empty strings).</param>
    /// <param name="merges">(left, right) pairs, best first.</param>
    /// <param name="addedTokens">Tokens split out before BPE.</param>
    /// <param name="preTokenizer">A GGUF pre name ("gpt2", "llama-bpe", "qwen2", "smollm") or, with <paramref name="isRegex"/>, a split regex.</param>
    /// <param name="isRegex">Whether <paramref name="preTokenizer"/> is a regex (known GPT-2/Llama-3/Qwen2 strings use the hand-written splitters).</param>
    /// <param name="ignoreMerges">HF <c>model.ignore_merges</c>.</param>
    /// <param name="addPrefixSpace">HF ByteLevel <c>add_prefix_space</c>.</param>
    /// <param name="mergesField">Name used in error messages.</param>
    /// <param name="file">File used in error messages.</param>
    /// <param name="bosTokenId">BOS id or -1.</param>
    /// <param name="eosTokenId">EOS id or -1.</param>
    /// <param name="unkTokenId">Unknown id or -1.</param>
    /// <param name="padTokenId">Padding id or -1.</param>
    /// <param name="addBos">Put BOS first when adding special tokens.</param>
    /// <param name="addEos">Put EOS last when adding special tokens.</param>
    public static ByteLevelBpe FromMerges(string[] tokens, IReadOnlyList<(string Left, string Right)> merges,
        IEnumerable<AddedToken> addedTokens, string preTokenizer = "gpt2", bool isRegex = false, bool ignoreMerges = false,
        bool addPrefixSpace = false, string mergesField = "model.merges", string? file = null,
        int bosTokenId = -1, int eosTokenId = -1, int unkTokenId = -1, int padTokenId = -1, bool addBos = false, bool addEos = false)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        var table = VocabularyChecks.RankedMerges(tokens, merges, mergesField, file);
        var pre = isRegex ? PreTokenizer.FromRegex(preTokenizer) : PreTokenizer.FromGgufName(preTokenizer);
        VocabularyChecks.Ids(tokens.Length, bosTokenId, eosTokenId, unkTokenId, padTokenId);
        return new ByteLevelBpe(tokens, table, addedTokens, pre, ignoreMerges, addPrefixSpace)
        {
            BosTokenId = bosTokenId, EosTokenId = eosTokenId, UnkTokenId = unkTokenId, PadTokenId = padTokenId,
            AddBos = addBos, AddEos = addEos,
        };
    }

    [ThreadStatic] private static List<(int Start, int End)>? t_words;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void EncodeSegment(string text, int start, int end, bool isFirst, List<int> ids, List<EncodedToken>? tokens)
    {
        string src = text;
        int shift = 0;
        if (AddPrefixSpace && isFirst && start == 0 && !char.IsWhiteSpace(text[0]))
        {
            src = " " + text[start..end];
            shift = 1;
            end = end - start + 1;
            start = 0;
        }
        var words = t_words ??= new List<(int, int)>();
        words.Clear();
        _pre.Split(src.AsSpan(start, end - start), words);
        foreach (var (ws, we) in words)
        {
            var word = src.AsSpan(start + ws, we - ws);
            int[]? triples = null;
            bool cacheable = word.Length <= MaxCachedWord;
            if (cacheable) lock (_cache) _cacheLookup.TryGetValue(word, out triples);
            if (triples is null)
            {
                triples = EncodeWord(word);
                if (cacheable)
                    lock (_cache)
                    {
                        if (_cache.Count > 200_000) _cache.Clear();
                        _cacheLookup[word] = triples;
                    }
            }
            int baseIndex = start + ws - shift;
            for (int t = 0; t < triples.Length; t += 3)
            {
                int id = triples[t];
                ids.Add(id);
                if (tokens is not null)
                {
                    int s = Math.Max(0, baseIndex + triples[t + 1]), e = Math.Max(0, baseIndex + triples[t + 2]);
                    tokens.Add(new EncodedToken(id, _pieces[id], s, e - s));
                }
            }
        }
    }

    // BPE over one word: (id, start, end) triples, spans in UTF-16 units of the word.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int[] EncodeWord(ReadOnlySpan<char> word)
    {
        int maxBytes = Encoding.UTF8.GetMaxByteCount(word.Length);
        var (idsA, st, en) = BpeMerges.SymbolBuffers(maxBytes);
        Span<byte> utf8 = stackalloc byte[4];
        int n = 0;
        for (int k = 0; k < word.Length;)
        {
            int len = char.IsHighSurrogate(word[k]) && k + 1 < word.Length && char.IsLowSurrogate(word[k + 1]) ? 2 : 1;
            int nb = Encoding.UTF8.GetBytes(word.Slice(k, len), utf8); // a lone surrogate becomes EF BF BD
            for (int q = 0; q < nb; q++)
            {
                int id = _byteIds[utf8[q]];
                if (id < 0) id = UnkTokenId;
                if (id < 0) continue; // byte missing from the vocabulary and no <unk>: dropped (documented)
                idsA[n] = id; st[n] = k; en[n] = k + len; n++;
            }
            k += len;
        }
        if (IgnoreMerges && n > 1)
        {
            Span<char> mapped = n <= 512 ? stackalloc char[n] : new char[n];
            bool ok = true;
            for (int i = 0; i < n && ok; i++)
            {
                string p = _pieces[idsA[i]];
                if (p.Length != 1) ok = false; else mapped[i] = p[0];
            }
            if (ok && _vocabLookup.TryGetValue(mapped, out int whole)) return [whole, 0, word.Length];
        }
        n = _merges.Merge(idsA, st, en, n);
        var result = new int[n * 3];
        for (int i = 0; i < n; i++) { result[3 * i] = idsA[i]; result[3 * i + 1] = st[i]; result[3 * i + 2] = en[i]; }
        return result;
    }

    private protected override void AppendBytes(int id, List<byte> bytes) => bytes.AddRange(_pieceBytes[id]);
}
