// Lexer of the Jinja subset chat templates use. It cuts the source into text and tags ({{ }}, {% %}, {# #}) and the
// inside of tags into tokens, applying Jinja's whitespace control as Hugging Face configures it: "-" on a tag strips
// all whitespace on that side; trim_blocks drops the first newline after a block or comment tag; lstrip_blocks drops
// spaces and tabs between the start of a line and a block or comment tag ("{%+" opts out). {% raw %} is honoured.
// Strings are read with Python's escapes. It knows nothing of statements; the parser gives tokens their meaning.
using System.Globalization;
using System.Text;

namespace LoraSharp.Tokenizers.Chat.Jinja;

internal enum TokKind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof }

internal readonly record struct Tok(TokKind Kind, string Value, int Pos, long IntValue = 0, double FloatValue = 0);

internal sealed class JinjaLexer
{
    private readonly string _s;
    private readonly bool _trimBlocks, _lstripBlocks;
    private readonly List<Tok> _toks = [];
    private readonly int[] _lineStarts;

    private JinjaLexer(string source, bool trimBlocks, bool lstripBlocks)
    {
        _s = source;
        _trimBlocks = trimBlocks;
        _lstripBlocks = lstripBlocks;
        var starts = new List<int> { 0 };
        for (int i = 0; i < source.Length; i++) if (source[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
    }

    public static (List<Tok> Tokens, int[] LineStarts) Tokenize(string source, bool trimBlocks = true, bool lstripBlocks = true)
    {
        var lx = new JinjaLexer(source, trimBlocks, lstripBlocks);
        lx.Run();
        return (lx._toks, lx._lineStarts);
    }

    public static (int Line, int Column) Position(int[] lineStarts, int pos)
    {
        int lo = 0, hi = lineStarts.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (lineStarts[mid] <= pos) lo = mid; else hi = mid - 1;
        }
        return (lo + 1, pos - lineStarts[lo] + 1);
    }

    private JinjaException Error(string message, int pos)
    {
        var (l, c) = Position(_lineStarts, pos);
        return new JinjaException(message, l, c);
    }

    private void Run()
    {
        int i = 0, n = _s.Length;
        bool stripNextLeading = false; // a "-" closed the previous tag
        bool trimNextNewline = false;  // trim_blocks after a block/comment tag
        while (i < n)
        {
            int open = FindOpen(i);
            int textEnd = open < 0 ? n : open;
            int textStart = i;
            if (stripNextLeading) { while (textStart < textEnd && char.IsWhiteSpace(_s[textStart])) textStart++; }
            else if (trimNextNewline)
            {
                if (textStart < textEnd && _s[textStart] == '\n') textStart++;
                else if (textStart + 1 < textEnd && _s[textStart] == '\r' && _s[textStart + 1] == '\n') textStart += 2;
            }
            stripNextLeading = trimNextNewline = false;
            if (open < 0)
            {
                AddText(textStart, n);
                break;
            }
            char kind = _s[open + 1];
            bool minus = open + 2 < n && _s[open + 2] == '-';
            bool plus = open + 2 < n && _s[open + 2] == '+';
            int te = textEnd;
            if (minus) { while (te > textStart && char.IsWhiteSpace(_s[te - 1])) te--; }
            else if (_lstripBlocks && !plus && kind is '%' or '#')
            {
                int k = te;
                while (k > textStart && _s[k - 1] is ' ' or '\t') k--;
                bool lineStart = k == 0 || _s[k - 1] == '\n';
                if (lineStart) te = k;
            }
            AddText(textStart, te);
            int p = open + 2 + (minus || plus ? 1 : 0);
            if (kind == '#')
            {
                int close = _s.IndexOf("#}", p, StringComparison.Ordinal);
                if (close < 0) throw Error("a comment {# is never closed with #}", open);
                stripNextLeading = close > p && _s[close - 1] == '-';
                trimNextNewline = _trimBlocks;
                i = close + 2;
                continue;
            }
            if (kind == '%' && TryRaw(p, open, out int afterRaw, out bool rawStrip))
            {
                i = afterRaw;
                stripNextLeading = rawStrip;
                trimNextNewline = _trimBlocks && !rawStrip;
                continue;
            }
            _toks.Add(new Tok(kind == '{' ? TokKind.VarBegin : TokKind.BlockBegin, "", open));
            i = LexTag(p, kind == '{' ? '}' : '%', open, out bool closeMinus);
            stripNextLeading = closeMinus;
            trimNextNewline = kind == '%' && _trimBlocks && !closeMinus;
        }
        _toks.Add(new Tok(TokKind.Eof, "", n));
    }

    private void AddText(int start, int end)
    {
        if (end > start) _toks.Add(new Tok(TokKind.Text, _s[start..end], start));
    }

    private int FindOpen(int from)
    {
        for (int i = from; i + 1 < _s.Length; i++)
            if (_s[i] == '{' && _s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    // {% raw %}...{% endraw %}: the text between is output as is.
    private bool TryRaw(int p, int open, out int after, out bool stripAfter)
    {
        after = 0; stripAfter = false;
        int q = p;
        while (q < _s.Length && char.IsWhiteSpace(_s[q])) q++;
        if (!(string.CompareOrdinal(_s, q, "raw", 0, 3) == 0 && q + 3 < _s.Length && !char.IsLetterOrDigit(_s[q + 3]) && _s[q + 3] != '_')) return false;
        q += 3;
        while (q < _s.Length && char.IsWhiteSpace(_s[q])) q++;
        bool m = q < _s.Length && _s[q] == '-';
        if (m) q++;
        if (q + 1 >= _s.Length || _s[q] != '%' || _s[q + 1] != '}') throw Error("expected %} after raw", q);
        int bodyStart = q + 2;
        if (m) while (bodyStart < _s.Length && char.IsWhiteSpace(_s[bodyStart])) bodyStart++;
        else if (_trimBlocks && bodyStart < _s.Length && _s[bodyStart] == '\n') bodyStart++;
        int search = bodyStart;
        while (true)
        {
            int e = _s.IndexOf("{%", search, StringComparison.Ordinal);
            if (e < 0) throw Error("{% raw %} is never closed with {% endraw %}", open);
            int r = e + 2;
            bool em = r < _s.Length && _s[r] == '-';
            if (em || (r < _s.Length && _s[r] == '+')) r++;
            while (r < _s.Length && char.IsWhiteSpace(_s[r])) r++;
            if (string.CompareOrdinal(_s, r, "endraw", 0, 6) != 0) { search = e + 2; continue; }
            r += 6;
            while (r < _s.Length && char.IsWhiteSpace(_s[r])) r++;
            bool cm = r < _s.Length && _s[r] == '-';
            if (cm) r++;
            if (r + 1 >= _s.Length || _s[r] != '%' || _s[r + 1] != '}') throw Error("expected %} after endraw", r);
            int bodyEnd = e;
            if (em) while (bodyEnd > bodyStart && char.IsWhiteSpace(_s[bodyEnd - 1])) bodyEnd--;
            AddText(bodyStart, bodyEnd);
            after = r + 2;
            stripAfter = cm;
            return true;
        }
    }

    private static readonly string[] s_ops2 = ["//", "**", "==", "!=", "<=", ">="];
    private const string Ops1 = "+-*/%~<>=()[]{},.:|";

    // Tokens of one tag up to its close ("}}" or "%}"); returns the index after the close.
    private int LexTag(int p, char closeChar, int open, out bool closeMinus)
    {
        int n = _s.Length;
        int depth = 0; // brackets, so that "}}" inside a dict literal is not the end
        while (true)
        {
            while (p < n && char.IsWhiteSpace(_s[p])) p++;
            if (p >= n) throw Error(closeChar == '}' ? "an expression {{ is never closed with }}" : "a statement {% is never closed with %}", open);
            char c = _s[p];
            if (c == '-' && p + 2 < n && _s[p + 1] == closeChar && _s[p + 2] == '}' && depth == 0)
            {
                _toks.Add(new Tok(closeChar == '}' ? TokKind.VarEnd : TokKind.BlockEnd, "", p));
                closeMinus = true;
                return p + 3;
            }
            if (c == closeChar && p + 1 < n && _s[p + 1] == '}' && (depth == 0 || closeChar == '%'))
            {
                _toks.Add(new Tok(closeChar == '}' ? TokKind.VarEnd : TokKind.BlockEnd, "", p));
                closeMinus = false;
                return p + 2;
            }
            if (c == '\'' || c == '"') { p = LexString(p); continue; }
            if (char.IsAsciiDigit(c)) { p = LexNumber(p); continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int s = p;
                while (p < n && (char.IsLetterOrDigit(_s[p]) || _s[p] == '_')) p++;
                _toks.Add(new Tok(TokKind.Name, _s[s..p], s));
                continue;
            }
            if (p + 1 < n)
            {
                string two = _s.Substring(p, 2);
                if (Array.IndexOf(s_ops2, two) >= 0) { _toks.Add(new Tok(TokKind.Op, two, p)); p += 2; continue; }
            }
            if (Ops1.IndexOf(c) >= 0)
            {
                if (c is '(' or '[' or '{') depth++;
                else if (c is ')' or ']' or '}') depth = Math.Max(0, depth - 1);
                _toks.Add(new Tok(TokKind.Op, c.ToString(), p));
                p++;
                continue;
            }
            throw Error($"unexpected character '{c}' inside a tag", p);
        }
    }

    private int LexNumber(int p)
    {
        int s = p, n = _s.Length;
        while (p < n && (char.IsAsciiDigit(_s[p]) || _s[p] == '_')) p++;
        bool isFloat = false;
        if (p + 1 < n && _s[p] == '.' && char.IsAsciiDigit(_s[p + 1]))
        {
            isFloat = true;
            p++;
            while (p < n && (char.IsAsciiDigit(_s[p]) || _s[p] == '_')) p++;
        }
        if (p < n && _s[p] is 'e' or 'E')
        {
            int q = p + 1;
            if (q < n && _s[q] is '+' or '-') q++;
            if (q < n && char.IsAsciiDigit(_s[q]))
            {
                isFloat = true;
                p = q;
                while (p < n && char.IsAsciiDigit(_s[p])) p++;
            }
        }
        string text = _s[s..p].Replace("_", "");
        if (isFloat) _toks.Add(new Tok(TokKind.Float, text, s, 0, double.Parse(text, CultureInfo.InvariantCulture)));
        else
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v)) throw Error($"integer {text} is too large", s);
            _toks.Add(new Tok(TokKind.Int, text, s, v));
        }
        return p;
    }

    private int LexString(int p)
    {
        char q = _s[p];
        int s = p++;
        var sb = new StringBuilder();
        while (true)
        {
            if (p >= _s.Length) throw Error("a string literal is never closed", s);
            char c = _s[p];
            if (c == q) { p++; break; }
            if (c != '\\') { sb.Append(c); p++; continue; }
            if (p + 1 >= _s.Length) throw Error("a string literal ends with a backslash", p);
            char e = _s[p + 1];
            p += 2;
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case 'a': sb.Append('\a'); break;
                case '0': sb.Append('\0'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': break;
                case 'x': sb.Append((char)Hex(p, 2)); p += 2; break;
                case 'u': sb.Append((char)Hex(p, 4)); p += 4; break;
                case 'U': sb.Append(char.ConvertFromUtf32(Hex(p, 8))); p += 8; break;
                default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes as written
            }
        }
        _toks.Add(new Tok(TokKind.String, sb.ToString(), s));
        return p;
    }

    private int Hex(int p, int len)
    {
        if (p + len > _s.Length || !int.TryParse(_s.AsSpan(p, len), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int v))
            throw Error($"bad \\x/\\u escape in a string literal", p);
        return v;
    }
}
