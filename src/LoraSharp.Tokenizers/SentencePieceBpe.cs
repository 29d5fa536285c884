// SentencePiece-style BPE (Llama-2, Mistral, TinyLlama, Phi-3, stories260K): spaces become '▁' (U+2581), a '▁' is
// prepended, code points are looked up in the vocabulary, missing ones fall back to <0xNN> byte tokens (or <unk>),
// then adjacent pairs merge by rank (tokenizer.json merges) or by the score of the merged piece (GGUF
// tokenizer.ggml.scores, as SentencePiece and llama.cpp do), leftmost first on ties.
// Speed: when no vocabulary piece has '▁' after a non-'▁' character (true for Llama, Phi-3, stories260K), no merge can
// cross a "word▁" boundary, so the text is cut before each space that follows a non-space and the words are cached;
// the result is identical to merging the whole text. It does not implement SentencePiece's Unigram model, NFKC
// normalization or remove_extra_whitespaces (Llama-family tokenizers turn both off).
using System.Text;
using System.Runtime.CompilerServices;

namespace LoraSharp.Tokenizers;

/// <summary>SentencePiece-style BPE with byte fallback.</summary>
public sealed class SentencePieceBpe : Tokenizer
{
    private const char Space = '\u2581';
    private const int MaxCachedKey = 256;

    private readonly BpeMerges _merges;
    private readonly int[] _bmpIds = new int[65536];
    private readonly Dictionary<int, int> _supplementaryIds = new();
    private readonly int[] _byteIds = new int[256];
    private readonly byte[][] _pieceBytes;
    private readonly bool _byteFallback, _fuseUnk, _segmentable;
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;

    /// <summary>How '▁' is prepended.</summary>
    public PrependScheme Prepend { get; }

    /// <summary>Whether decoding drops one leading space (HF decoder <c>Strip(" ", 1, 0)</c>; true when a space is prepended).</summary>
    public bool StripLeadingSpaceOnDecode { get; }

    /// <summary>Whether code points missing from the vocabulary become &lt;0xNN&gt; byte tokens.</summary>
    public bool ByteFallback => _byteFallback;

    private SentencePieceBpe(string[] pieces, TokenType[] types, BpeMerges merges, IEnumerable<AddedToken> added,
        int unkId, bool byteFallback, bool fuseUnk, PrependScheme prepend, bool stripLeadingSpace) : base(pieces, added)
    {
        _merges = merges;
        _byteFallback = byteFallback;
        _fuseUnk = fuseUnk;
        Prepend = prepend;
        StripLeadingSpaceOnDecode = stripLeadingSpace;
        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        Array.Fill(_bmpIds, -1);
        Array.Fill(_byteIds, -1);
        for (int id = pieces.Length - 1; id >= 0; id--) // lowest id wins for duplicate pieces
        {
            string p = pieces[id];
            if (types[id] == TokenType.Unused || p.Length == 0) continue;
            if (types[id] == TokenType.Byte || (p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>'))
            {
                // A piece typed BYTE that is not <0xXX> (a corrupt table) is kept as an ordinary piece.
                if (p.Length >= 5 && byte.TryParse(p.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                {
                    _byteIds[b] = id;
                    continue;
                }
            }
            if (p.Length == 1) _bmpIds[p[0]] = id;
            else if (p.Length == 2 && char.IsSurrogatePair(p[0], p[1])) _supplementaryIds[char.ConvertToUtf32(p[0], p[1])] = id;
        }
        _pieceBytes = new byte[pieces.Length][];
        for (int id = 0; id < pieces.Length; id++)
        {
            int b = Array.IndexOf(_byteIds, id);
            _pieceBytes[id] = types[id] == TokenType.Byte && b >= 0 ? [(byte)b]
                : b >= 0 && _byteIds[b] == id ? [(byte)b]
                : Encoding.UTF8.GetBytes(pieces[id].Replace(Space, ' '));
        }
        _segmentable = true;
        foreach (int m in merges.MergedIds())
        {
            string p = pieces[m];
            for (int k = 1; k < p.Length && _segmentable; k++)
                if (p[k] == Space && p[k - 1] != Space) _segmentable = false;
        }
        UnkTokenId = unkId;
    }

    /// <summary>
    /// Builds the tokenizer from a GGUF-style vocabulary (<c>tokenizer.ggml.model = "llama"</c>): merges are every split of a
    /// normal piece into two vocabulary pieces, ranked by the merged piece's score (higher first), as SentencePiece and
    /// llama.cpp do.
    /// </summary>
    /// <param name="tokens">tokenizer.ggml.tokens: the pieces, id = index.</param>
    /// <param name="scores">tokenizer.ggml.scores: one score per piece.</param>
    /// <param name="tokenTypes">tokenizer.ggml.token_type (see <see cref="TokenType"/>); null means all normal except &lt;0xNN&gt; bytes.
    /// Control and unknown tokens become special added tokens, user-defined ones non-special added tokens.</param>
    /// <param name="bosTokenId">tokenizer.ggml.bos_token_id, or -1.</param>
    /// <param name="eosTokenId">tokenizer.ggml.eos_token_id, or -1.</param>
    /// <param name="unkTokenId">tokenizer.ggml.unknown_token_id, or -1.</param>
    /// <param name="padTokenId">tokenizer.ggml.padding_token_id, or -1.</param>
    /// <param name="addBos">tokenizer.ggml.add_bos_token (llama.cpp's default for this model: true).</param>
    /// <param name="addEos">tokenizer.ggml.add_eos_token (default false).</param>
    /// <param name="addSpacePrefix">tokenizer.ggml.add_space_prefix (default true).</param>
    public static SentencePieceBpe FromVocabulary(string[] tokens, float[] scores, int[]? tokenTypes,
        int bosTokenId = -1, int eosTokenId = -1, int unkTokenId = -1, int padTokenId = -1,
        bool addBos = true, bool addEos = false, bool addSpacePrefix = true)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Length != tokens.Length)
            throw new TokenizerFormatException($"tokenizer.ggml.scores has {scores.Length} entries but tokenizer.ggml.tokens has {tokens.Length}; they must match.") { Field = "tokenizer.ggml.scores" };
        var types = VocabularyChecks.Types(tokens, tokenTypes);
        VocabularyChecks.Ids(tokens.Length, bosTokenId, eosTokenId, unkTokenId, padTokenId);

        var lookup = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) lookup.TryAdd(tokens[i], i);
        var alt = lookup.GetAlternateLookup<ReadOnlySpan<char>>();

        // Dense priority: higher score merges first; equal scores share a priority (then leftmost wins).
        var candidates = new List<int>();
        for (int i = 0; i < tokens.Length; i++)
            if (types[i] is TokenType.Normal or TokenType.Undefined && tokens[i].Length >= 2) candidates.Add(i);
        var distinct = candidates.Select(i => scores[i]).Distinct().OrderByDescending(s => s).ToArray();
        var priorityOf = new Dictionary<float, int>(distinct.Length);
        for (int k = 0; k < distinct.Length; k++) priorityOf[distinct[k]] = k;

        var merges = new BpeMerges(candidates.Count * 4);
        foreach (int id in candidates)
        {
            string p = tokens[id];
            int prio = priorityOf[scores[id]];
            for (int k = 1; k < p.Length; k++)
            {
                if (char.IsLowSurrogate(p[k]) && char.IsHighSurrogate(p[k - 1])) continue;
                if (alt.TryGetValue(p.AsSpan(0, k), out int left) && alt.TryGetValue(p.AsSpan(k), out int right)
                    && types[left] is not (TokenType.Byte or TokenType.Unused) && types[right] is not (TokenType.Byte or TokenType.Unused))
                    merges.TryAdd(left, right, prio, id);
            }
        }
        return new SentencePieceBpe(tokens, types, merges, VocabularyChecks.AddedFromTypes(tokens, types), unkTokenId,
            byteFallback: true, fuseUnk: false, addSpacePrefix ? PrependScheme.Always : PrependScheme.Never, addSpacePrefix)
        {
            BosTokenId = bosTokenId, EosTokenId = eosTokenId, PadTokenId = padTokenId, AddBos = addBos, AddEos = addEos,
        };
    }

    /// <summary>
    /// Builds the tokenizer from pieces and ranked merges (Hugging Face tokenizer.json <c>model.merges</c>, rank = position).
    /// </summary>
    /// <param name="tokens">Pieces by id (holes may be empty strings).</param>
    /// <param name="merges">(left, right) pairs, best first.</param>
    /// <param name="addedTokens">Tokens split out before BPE (<c>added_tokens</c>).</param>
    /// <param name="tokenTypes">Optional types; null: &lt;0xNN&gt; are bytes, added special tokens control, the rest normal.</param>
    /// <param name="unkTokenId">Unknown id used when byte fallback is off or a byte piece is missing.</param>
    /// <param name="byteFallback">HF <c>model.byte_fallback</c>.</param>
    /// <param name="fuseUnk">HF <c>model.fuse_unk</c>: consecutive unknowns become one.</param>
    /// <param name="prepend">How '▁' is prepended.</param>
    /// <param name="stripLeadingSpaceOnDecode">Decoder drops one leading space (HF <c>Strip</c> decoder / Metaspace).</param>
    /// <param name="mergesField">Name used in error messages (e.g. <c>model.merges</c>).</param>
    /// <param name="file">File used in error messages.</param>
    /// <param name="bosTokenId">BOS id or -1.</param>
    /// <param name="eosTokenId">EOS id or -1.</param>
    /// <param name="padTokenId">Padding id or -1.</param>
    /// <param name="addBos">Put BOS first when adding special tokens.</param>
    /// <param name="addEos">Put EOS last when adding special tokens.</param>
    public static SentencePieceBpe FromMerges(string[] tokens, IReadOnlyList<(string Left, string Right)> merges,
        IEnumerable<AddedToken> addedTokens, int[]? tokenTypes = null, int unkTokenId = -1, bool byteFallback = true,
        bool fuseUnk = true, PrependScheme prepend = PrependScheme.Always, bool stripLeadingSpaceOnDecode = true,
        string mergesField = "model.merges", string? file = null,
        int bosTokenId = -1, int eosTokenId = -1, int padTokenId = -1, bool addBos = true, bool addEos = false)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        var added = addedTokens.ToArray();
        var types = VocabularyChecks.Types(tokens, tokenTypes);
        if (tokenTypes is null)
            foreach (var t in added) if (t.Special) types[t.Id] = TokenType.Control; else types[t.Id] = TokenType.UserDefined;
        VocabularyChecks.Ids(tokens.Length, bosTokenId, eosTokenId, unkTokenId, padTokenId);
        var table = VocabularyChecks.RankedMerges(tokens, merges, mergesField, file);
        return new SentencePieceBpe(tokens, types, table, added, unkTokenId, byteFallback, fuseUnk, prepend, stripLeadingSpaceOnDecode)
        {
            BosTokenId = bosTokenId, EosTokenId = eosTokenId, PadTokenId = padTokenId, AddBos = addBos, AddEos = addEos,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private protected override void EncodeSegment(string text, int start, int end, bool isFirst, List<int> ids, List<EncodedToken>? tokens)
    {
        bool prefix = Prepend == PrependScheme.Always || (Prepend == PrependScheme.First && isFirst && start == 0);
        if (!_segmentable)
        {
            EncodePart(text, start, end, prefix, ids, tokens);
            return;
        }
        int a = start;
        for (int p = start + 1; p < end; p++)
        {
            if (text[p] == ' ' && text[p - 1] != ' ' && text[p - 1] != Space)
            {
                EncodePart(text, a, p, prefix, ids, tokens);
                prefix = false;
                a = p;
            }
        }
        EncodePart(text, a, end, prefix, ids, tokens);
    }

    // Encodes text[a..b) with ' ' -> '▁' (and a leading '▁' when prefix), through the cache when short.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void EncodePart(string text, int a, int b, bool prefix, List<int> ids, List<EncodedToken>? tokens)
    {
        int pl = prefix ? 1 : 0;
        int n = b - a + pl;
        char[]? rented = null;
        Span<char> key = n <= 512 ? stackalloc char[n] : (rented = System.Buffers.ArrayPool<char>.Shared.Rent(n)).AsSpan(0, n);
        if (prefix) key[0] = Space;
        text.AsSpan(a, b - a).Replace(key[pl..], ' ', Space);

        int[]? triples = null;
        if (n <= MaxCachedKey)
        {
            lock (_cache) _cacheLookup.TryGetValue(key, out triples);
        }
        if (triples is null)
        {
            triples = EncodeKey(key);
            if (n <= MaxCachedKey)
                lock (_cache)
                {
                    if (_cache.Count > 200_000) _cache.Clear();
                    _cacheLookup[key] = triples;
                }
        }
        if (rented is not null) System.Buffers.ArrayPool<char>.Shared.Return(rented);

        for (int t = 0; t < triples.Length; t += 3)
        {
            int id = triples[t];
            ids.Add(id);
            if (tokens is not null)
            {
                int s = a + Math.Max(0, triples[t + 1] - pl), e = a + Math.Max(0, triples[t + 2] - pl);
                tokens.Add(new EncodedToken(id, _pieces[id], s, e - s));
            }
        }
    }

    // BPE over one normalized key: returns (id, start, end) triples in key units.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int[] EncodeKey(ReadOnlySpan<char> key)
    {
        int cap = key.Length * 4;
        var (idsA, st, en) = BpeMerges.SymbolBuffers(cap);
        int n = 0;
        Span<byte> utf8 = stackalloc byte[4];
        for (int k = 0; k < key.Length;)
        {
            int len = 1, id;
            char c = key[k];
            if (char.IsHighSurrogate(c) && k + 1 < key.Length && char.IsLowSurrogate(key[k + 1]))
            {
                len = 2;
                id = _supplementaryIds.TryGetValue(char.ConvertToUtf32(c, key[k + 1]), out int sid) ? sid : -1;
            }
            else id = _bmpIds[c];

            if (id >= 0)
            {
                idsA[n] = id; st[n] = k; en[n] = k + len; n++;
            }
            else
            {
                bool fallback = _byteFallback;
                int nb = 0;
                if (fallback)
                {
                    // A lone surrogate encodes as U+FFFD (EF BF BD), as .NET's UTF-8 encoder does.
                    nb = Encoding.UTF8.GetBytes(key.Slice(k, len), utf8);
                    for (int q = 0; q < nb; q++) if (_byteIds[utf8[q]] < 0) fallback = false;
                }
                if (fallback)
                {
                    for (int q = 0; q < nb; q++) { idsA[n] = _byteIds[utf8[q]]; st[n] = k; en[n] = k + len; n++; }
                }
                else if (_fuseUnk && n > 0 && idsA[n - 1] == UnkTokenId && UnkTokenId >= 0 && en[n - 1] == k)
                {
                    en[n - 1] = k + len;
                }
                else if (UnkTokenId >= 0)
                {
                    idsA[n] = UnkTokenId; st[n] = k; en[n] = k + len; n++;
                }
                else throw new TokenizerFormatException(
                    $"Character U+{(int)key[k]:X4} is not in the vocabulary and the tokenizer has neither byte fallback nor an unknown token.");
            }
            k += len;
        }
        n = _merges.Merge(idsA, st, en, n);
        var result = new int[n * 3];
        for (int i = 0; i < n; i++) { result[3 * i] = idsA[i]; result[3 * i + 1] = st[i]; result[3 * i + 2] = en[i]; }
        return result;
    }

    private protected override void AppendBytes(int id, List<byte> bytes) => bytes.AddRange(_pieceBytes[id]);

    private protected override string FinishDecode(string text) =>
        StripLeadingSpaceOnDecode && text.Length > 0 && text[0] == ' ' ? text[1..] : text;
}
