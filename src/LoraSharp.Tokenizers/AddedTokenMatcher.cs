// Splits added/special tokens out of a text before BPE: leftmost-longest literal matching, as Hugging Face's
// AddedVocabulary does, with lstrip/rstrip/single_word. It does not normalize the text first (every added token is
// matched on the raw text, which is what "normalized": false means and what llama.cpp does).
using System.Buffers;

namespace LoraSharp.Tokenizers;

internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar = new();
    private readonly SearchValues<char> _firstChars;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        foreach (var g in tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0]))
            _byFirstChar[g.Key] = g.OrderByDescending(t => t.Content.Length).ThenBy(t => t.Id).ToArray();
        _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
        IsEmpty = _byFirstChar.Count == 0;
    }

    public bool IsEmpty { get; }

    /// <summary>
    /// Cuts text into pieces: (start, end, -1) for raw text, (start, end, id) for a matched added token
    /// (the span includes whitespace swallowed by lstrip/rstrip).
    /// </summary>
    public void Split(string text, bool parseSpecial, List<(int Start, int End, int Id)> parts)
    {
        int last = 0, i = 0;
        var span = text.AsSpan();
        while (i < text.Length)
        {
            int k = IsEmpty ? -1 : span[i..].IndexOfAny(_firstChars);
            if (k < 0) break;
            i += k;
            AddedToken? hit = null;
            foreach (var t in _byFirstChar[span[i]])
            {
                if (t.Special && !parseSpecial) continue;
                if (!span[i..].StartsWith(t.Content, StringComparison.Ordinal)) continue;
                if (t.SingleWord && (IsWordChar(span, i - 1) || IsWordChar(span, i + t.Content.Length))) continue;
                hit = t;
                break;
            }
            if (hit is null) { i++; continue; }
            int start = i, end = i + hit.Content.Length;
            if (hit.LStrip) while (start > last && char.IsWhiteSpace(span[start - 1])) start--;
            if (hit.RStrip) while (end < span.Length && char.IsWhiteSpace(span[end])) end++;
            if (start > last) parts.Add((last, start, -1));
            parts.Add((start, end, hit.Id));
            last = i = end;
        }
        if (last < text.Length) parts.Add((last, text.Length, -1));
    }

    private static bool IsWordChar(ReadOnlySpan<char> s, int i) =>
        (uint)i < (uint)s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_');
}
