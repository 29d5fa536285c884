// Pre-tokenizers of byte-level BPE models: the text is cut into words before BPE, by the split patterns of
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:   the Llama-3 pattern with \p{N} instead of \p{N}{1,3}
//   SmolLM/StarCoder: every \p{N} alone, then the GPT-2 pattern on the text between digits.
// These are written by hand over Unicode code points (not UTF-16 units, so letters outside the BMP are letters),
// following the regex semantics exactly (leftmost alternative, greedy with backtracking); text no alternative
// matches cannot occur. Any other pattern from a tokenizer.json runs through .NET Regex (which sees UTF-16 units).
// \s is Unicode White_Space (= char.IsWhiteSpace), \p{L} letters, \p{N} numbers (Nd, Nl, No).
using System.Globalization;
using System.Text.RegularExpressions;
using System.Runtime.CompilerServices;

namespace LoraSharp.Tokenizers;

/// <summary>Cuts a text into the words that byte-level BPE encodes one at a time.</summary>
internal abstract class PreTokenizer
{
    /// <summary>Appends (start, end) of every word of text[0..] to <paramref name="words"/>; the words tile the text.</summary>
    public abstract void Split(ReadOnlySpan<char> text, List<(int Start, int End)> words);

    public abstract string Name { get; }

    /// <summary>The pre-tokenizer for a GGUF <c>tokenizer.ggml.pre</c> name; throws for names it does not know.</summary>
    public static PreTokenizer FromGgufName(string? name)
    {
        switch ((name ?? "default").Trim().ToLowerInvariant())
        {
            case "default": case "gpt2": case "gpt-2": case "olmo": case "jais": case "poro-chat": case "phi-2":
                return new HandWritten(Pattern.Gpt2, name ?? "default");
            case "llama-bpe": case "llama3": case "llama-v3": case "llama-3": case "dbrx": case "smaug-bpe":
            case "falcon3": case "tekken": case "pixtral": case "exaone": case "gpt-4o": case "cl100k": case "o200k":
                return new HandWritten(Pattern.Llama3, name!);
            case "qwen2": case "qwen": case "deepseek-r1-qwen": case "stablelm2": case "hunyuan":
                return new HandWritten(Pattern.Qwen2, name!);
            case "smollm": case "starcoder": case "refact": case "codeshell": case "command-r": case "minerva":
                return new HandWritten(Pattern.DigitsThenGpt2, name!);
            default:
                throw new TokenizerFormatException(
                    $"GGUF tokenizer.ggml.pre '{name}' is not a known pre-tokenizer. Supported: default/gpt2 (GPT-2 pattern), " +
                    "llama-bpe/llama3/dbrx/smaug-bpe (Llama-3 pattern), qwen2/deepseek-r1-qwen (Qwen2 pattern), " +
                    "smollm/starcoder/refact (single digits + GPT-2 pattern).");
        }
    }

    /// <summary>Exact regex strings of the known patterns as Hugging Face writes them in tokenizer.json.</summary>
    internal const string Gpt2Regex = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    internal const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The hand-written splitter for a known regex string, else a .NET Regex splitter.</summary>
    public static PreTokenizer FromRegex(string pattern)
    {
        if (pattern == Gpt2Regex) return new HandWritten(Pattern.Gpt2, "gpt2");
        if (pattern == Llama3Regex) return new HandWritten(Pattern.Llama3, "llama-bpe");
        if (pattern == Qwen2Regex) return new HandWritten(Pattern.Qwen2, "qwen2");
        return new RegexSplitter(pattern);
    }

    public static PreTokenizer Gpt2 { get; } = new HandWritten(Pattern.Gpt2, "gpt2");
    public static PreTokenizer DigitsThenGpt2 { get; } = new HandWritten(Pattern.DigitsThenGpt2, "smollm");

    internal enum Pattern { Gpt2, Llama3, Qwen2, DigitsThenGpt2 }

    // ---- character classes over code points ----
    private const byte L = 1, N = 2, S = 4;
    private static readonly byte[] s_ascii = BuildAscii();

    private static byte[] BuildAscii()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++)
        {
            if (char.IsLetter((char)c)) t[c] = L;
            else if (char.IsNumber((char)c)) t[c] = N;
            else if (char.IsWhiteSpace((char)c)) t[c] = S;
        }
        return t;
    }

    private static byte Class(int cp)
    {
        if (cp < 128) return s_ascii[cp];
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter: case UnicodeCategory.LowercaseLetter: case UnicodeCategory.TitlecaseLetter:
            case UnicodeCategory.ModifierLetter: case UnicodeCategory.OtherLetter:
                return L;
            case UnicodeCategory.DecimalDigitNumber: case UnicodeCategory.LetterNumber: case UnicodeCategory.OtherNumber:
                return N;
            default:
                return cp < 0x10000 && char.IsWhiteSpace((char)cp) ? S : (byte)0;
        }
    }

    /// <summary>Class of the code point at i and its length in UTF-16 units (a lone surrogate is one "other" unit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static byte ClassAt(ReadOnlySpan<char> s, int i, out int len)
    {
        char c = s[i];
        if (c < 128) { len = 1; return s_ascii[c]; }
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            len = 2;
            return Class(char.ConvertToUtf32(c, s[i + 1]));
        }
        len = 1;
        return Class(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int SkipClass(ReadOnlySpan<char> s, int i, int end, byte cls)
    {
        while (i < end && ClassAt(s, i, out int l) == cls) i += l;
        return i;
    }

    private sealed class HandWritten(Pattern pattern, string name) : PreTokenizer
    {
        public override string Name => name;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> words)
        {
            int n = text.Length, i = 0, limit = 0;
            while (i < n)
            {
                int e;
                switch (pattern)
                {
                    case Pattern.Gpt2: e = NextGpt2(text, i, n); break;
                    case Pattern.Llama3: e = NextLlama3(text, i, n, 3); break;
                    case Pattern.Qwen2: e = NextLlama3(text, i, n, 1); break;
                    default:
                        if (ClassAt(text, i, out int dl) == N) e = i + dl;
                        else
                        {
                            if (limit <= i) // the end of this digit-free stretch, found once per stretch
                            {
                                limit = i;
                                while (limit < n && ClassAt(text, limit, out int l2) != N) limit += l2;
                            }
                            e = NextGpt2(text, i, limit);
                        }
                        break;
                }
                words.Add((i, e));
                i = e;
            }
        }

        // One match of the GPT-2 pattern at i within text[..n].
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static int NextGpt2(ReadOnlySpan<char> s, int i, int n)
        {
            char c = s[i];
            if (c == '\'' && i + 1 < n)
            {
                char d = s[i + 1];
                if (d is 's' or 't' or 'm' or 'd') return i + 2;
                if (i + 2 < n && ((d == 'r' && s[i + 2] == 'e') || (d == 'v' && s[i + 2] == 'e') || (d == 'l' && s[i + 2] == 'l'))) return i + 3;
            }
            int j = c == ' ' && i + 1 < n ? i + 1 : i;
            byte cj = ClassAt(s, j, out _);
            if (j > i && cj == S) j = i; // " " followed by whitespace: the optional space can not help
            if (j == i) cj = ClassAt(s, i, out _);
            if (cj == L) return SkipClass(s, j, n, L);
            if (cj == N) return SkipClass(s, j, n, N);
            if (cj == 0) return SkipClass(s, j, n, 0);
            // whitespace at i
            int e = i;
            while (e < n && ClassAt(s, e, out int l) == S) e += l;
            if (e == n) return e;         // \s+(?!\S) at the end of text
            if (e - i >= 2) return e - 1; // leave one space to start the next word
            return e;                     // \s+
        }

        // One match of the Llama-3 (maxDigits 3) or Qwen2 (maxDigits 1) pattern at i.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static int NextLlama3(ReadOnlySpan<char> s, int i, int n, int maxDigits)
        {
            char c = s[i];
            if (c == '\'' && i + 1 < n)
            {
                char d = char.ToLowerInvariant(s[i + 1]);
                if (d is 's' or 't' or 'm' or 'd') return i + 2;
                if (i + 2 < n)
                {
                    char d2 = char.ToLowerInvariant(s[i + 2]);
                    if ((d == 'r' && d2 == 'e') || (d == 'v' && d2 == 'e') || (d == 'l' && d2 == 'l')) return i + 3;
                }
            }
            byte c0 = ClassAt(s, i, out int l0);
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (c0 == L) return SkipClass(s, i, n, L);
            if (c0 != N && c != '\r' && c != '\n' && i + l0 < n && ClassAt(s, i + l0, out _) == L)
                return SkipClass(s, i + l0, n, L);
            // \p{N}{1,maxDigits}
            if (c0 == N)
            {
                int e = i, k = 0;
                while (k < maxDigits && e < n && ClassAt(s, e, out int l) == N) { e += l; k++; }
                return e;
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            int j = -1;
            if (c0 == 0) j = i;
            else if (c == ' ' && i + 1 < n && ClassAt(s, i + 1, out _) == 0) j = i + 1;
            if (j >= 0)
            {
                int e = SkipClass(s, j, n, 0);
                while (e < n && s[e] is '\r' or '\n') e++;
                return e;
            }
            // whitespace at i: \s*[\r\n]+ | \s+(?!\S) | \s+
            int end = i, lastNewline = -1;
            while (end < n && ClassAt(s, end, out int l) == S)
            {
                if (s[end] is '\r' or '\n') lastNewline = end;
                end += l;
            }
            if (lastNewline >= 0) return lastNewline + 1;
            if (end == n) return end;
            if (end - i >= 2) return end - 1;
            return end;
        }
    }

    /// <summary>Any other split pattern (tokenizer.json Split with behavior Isolated): matches and the gaps between them.</summary>
    private sealed class RegexSplitter(string pattern) : PreTokenizer
    {
        private readonly Regex _regex = new(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

        public override string Name => "regex:" + pattern;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> words)
        {
            int last = 0;
            foreach (ValueMatch m in _regex.EnumerateMatches(text))
            {
                if (m.Length == 0) continue;
                if (m.Index > last) words.Add((last, m.Index));
                words.Add((m.Index, m.Index + m.Length));
                last = m.Index + m.Length;
            }
            if (last < text.Length) words.Add((last, text.Length));
        }
    }
}
