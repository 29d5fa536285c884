// The tokenizer API shared by every model (shaped like Microsoft.ML.Tokenizers' Tokenizer): encode to ids or to tokens
// with offsets, count, decode. The shared part lives here: added/special-token splitting, BOS/EOS, UTF-8 handling of
// decode output. Subclasses (SentencePieceBpe, ByteLevelBpe) only encode raw text segments and turn pieces into bytes.
// Not thread-safe while being built; encoding and decoding are safe from many threads (caches are locked).
using System.Text;
using System.Runtime.CompilerServices;

namespace LoraSharp.Tokenizers;

/// <summary>A text tokenizer: text to token ids and back.</summary>
public abstract class Tokenizer
{
    private protected readonly string[] _pieces;
    private protected readonly Dictionary<string, int> _vocab;
    private protected readonly AddedTokenMatcher _matcher;
    private protected readonly AddedToken?[] _addedById;
    private readonly AddedToken[] _added;

    private protected Tokenizer(string[] pieces, IEnumerable<AddedToken> addedTokens)
    {
        _pieces = pieces;
        _vocab = new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++) _vocab.TryAdd(pieces[i], i);
        _added = addedTokens.ToArray();
        _addedById = new AddedToken?[pieces.Length];
        foreach (var t in _added)
        {
            if ((uint)t.Id >= (uint)pieces.Length)
                throw new TokenizerFormatException($"Added token '{t.Content}' has id {t.Id}, outside the vocabulary of {pieces.Length} entries.");
            _addedById[t.Id] = t;
        }
        _matcher = new AddedTokenMatcher(_added);
    }

    /// <summary>Number of ids (vocabulary entries including added tokens).</summary>
    public int VocabSize => _pieces.Length;

    /// <summary>Beginning-of-sequence id, or -1 when the model has none.</summary>
    public int BosTokenId { get; init; } = -1;

    /// <summary>End-of-sequence id, or -1.</summary>
    public int EosTokenId { get; init; } = -1;

    /// <summary>Padding id, or -1.</summary>
    public int PadTokenId { get; init; } = -1;

    /// <summary>Unknown-token id, or -1.</summary>
    public int UnkTokenId { get; init; } = -1;

    /// <summary>Whether encoding with <c>addSpecialTokens</c> puts BOS first (HF <c>add_bos_token</c>, GGUF <c>tokenizer.ggml.add_bos_token</c>).</summary>
    public bool AddBos { get; init; }

    /// <summary>Whether encoding with <c>addSpecialTokens</c> puts EOS last (HF <c>add_eos_token</c>, GGUF <c>tokenizer.ggml.add_eos_token</c>).</summary>
    public bool AddEos { get; init; }

    /// <summary>The tokens split out of the text before BPE (special and non-special).</summary>
    public IReadOnlyList<AddedToken> AddedTokens => _added;

    /// <summary>The piece of an id, or null when out of range.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    /// <summary>The id of a piece, or null when it is not in the vocabulary.</summary>
    public int? TokenToId(string piece) => _vocab.TryGetValue(piece, out int id) ? id : null;

    /// <summary>Whether the id is a special token (dropped by <c>skipSpecialTokens</c>).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_addedById.Length && _addedById[id] is { Special: true };

    /// <summary>Encodes text to ids.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecialTokens">Add BOS/EOS as <see cref="AddBos"/>/<see cref="AddEos"/> say (HF <c>add_special_tokens</c>, llama.cpp <c>add_special</c>).</param>
    /// <param name="parseSpecialTokens">Match special tokens written in the text (<c>&lt;s&gt;</c>, <c>&lt;|im_start|&gt;</c>) as such
    /// (HF always does; llama.cpp <c>parse_special</c>). Non-special added tokens are always matched.</param>
    public int[] EncodeToIds(string text, bool addSpecialTokens = true, bool parseSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, addSpecialTokens, parseSpecialTokens, ids, null);
        return ids.ToArray();
    }

    /// <summary>Encodes UTF-8 bytes to ids. Invalid UTF-8 is replaced by U+FFFD (one per maximal invalid subsequence) first.</summary>
    public int[] EncodeToIds(ReadOnlySpan<byte> utf8Text, bool addSpecialTokens = true, bool parseSpecialTokens = true) =>
        EncodeToIds(Encoding.UTF8.GetString(utf8Text), addSpecialTokens, parseSpecialTokens);

    /// <summary>Encodes text to tokens with pieces and character offsets.</summary>
    public IReadOnlyList<EncodedToken> EncodeToTokens(string text, bool addSpecialTokens = true, bool parseSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        var tokens = new List<EncodedToken>(text.Length / 3 + 4);
        Encode(text, addSpecialTokens, parseSpecialTokens, ids, tokens);
        return tokens;
    }

    /// <summary>Number of tokens <see cref="EncodeToIds(string, bool, bool)"/> would return.</summary>
    public int CountTokens(string text, bool addSpecialTokens = true, bool parseSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, addSpecialTokens, parseSpecialTokens, ids, null);
        return ids.Count;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Encode(string text, bool addSpecial, bool parseSpecial, List<int> ids, List<EncodedToken>? tokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (addSpecial && AddBos && BosTokenId >= 0) Emit(ids, tokens, BosTokenId, 0, 0);
        if (_matcher.IsEmpty)
        {
            if (text.Length > 0) EncodeSegment(text, 0, text.Length, true, ids, tokens);
        }
        else
        {
            var parts = new List<(int Start, int End, int Id)>();
            _matcher.Split(text, parseSpecial, parts);
            bool first = true;
            foreach (var (start, end, id) in parts)
            {
                if (id >= 0) Emit(ids, tokens, id, start, end - start);
                else EncodeSegment(text, start, end, first, ids, tokens);
                first = false;
            }
        }
        if (addSpecial && AddEos && EosTokenId >= 0) Emit(ids, tokens, EosTokenId, text.Length, 0);
    }

    private protected void Emit(List<int> ids, List<EncodedToken>? tokens, int id, int index, int length)
    {
        ids.Add(id);
        tokens?.Add(new EncodedToken(id, _pieces[id], index, length));
    }

    /// <summary>Encodes text[start..end) (no added tokens inside); <paramref name="isFirst"/> is true for the text's first part.</summary>
    private protected abstract void EncodeSegment(string text, int start, int end, bool isFirst, List<int> ids, List<EncodedToken>? tokens);

    /// <summary>Appends the bytes a non-added token stands for.</summary>
    private protected abstract void AppendBytes(int id, List<byte> bytes);

    /// <summary>Final fix-up of decoded text (SentencePiece drops the leading space it added).</summary>
    private protected virtual string FinishDecode(string text) => text;

    /// <summary>
    /// Decodes ids to text. Byte pieces are fused into UTF-8 first; bytes that are not valid UTF-8 become U+FFFD.
    /// Added tokens decode to their content unless <paramref name="skipSpecialTokens"/> drops special ones.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_pieces.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is outside the vocabulary (0..{_pieces.Length - 1}).");
            var added = _addedById[id];
            if (added is not null)
            {
                if (added.Special && skipSpecialTokens) continue;
                bytes.AddRange(Encoding.UTF8.GetBytes(added.Content));
            }
            else AppendBytes(id, bytes);
        }
        return FinishDecode(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
    }
}
