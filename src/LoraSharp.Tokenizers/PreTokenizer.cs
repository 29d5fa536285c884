// Pre-tokenizers of byte-level BPE models: the text is cut into words before BPE. GGUF files name theirs in
// tokenizer.ggml.pre; FromGgufName maps every name llama.cpp's llama-vocab.cpp knows (except the few it handles with
// custom code) to the same split patterns, applied the same way (each pattern in turn cuts every piece into its
// matches and the gaps between them). The four patterns most vocabularies use are hand-written here:
//   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:   the Llama-3 pattern with \p{N} instead of \p{N}{1,3}
//   SmolLM/StarCoder: every \p{N} alone, then the GPT-2 pattern on the text between digits.
// These are written by hand over Unicode code points (not UTF-16 units, so letters outside the BMP are letters),
// following the regex semantics exactly (leftmost alternative, greedy with backtracking); text no alternative
// matches cannot occur. The other types (default, deepseek-llm/-coder/-v3, falcon, tekken, gpt-4o, poro/bloom,
// viking, chameleon, bailingmoe, seed-coder) and any pattern from a tokenizer.json run through .NET Regex (which
// sees UTF-16 units). \s is Unicode White_Space (= char.IsWhiteSpace), \p{L} letters, \p{N} numbers (Nd, Nl, No).
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

    /// <summary>Whether llama.cpp takes a whole word that is itself a vocabulary piece without running BPE on it
    /// (ignore_merges: the Llama-3 family, tekken).</summary>
    public bool IgnoreMerges { get; private init; }

    /// <summary>
    /// The pre-tokenizer for a GGUF <c>tokenizer.ggml.pre</c> name, as llama.cpp's llama-vocab.cpp maps the name to
    /// a pre-tokenizer type and the type to its split patterns (several patterns apply one after another, each
    /// splitting the pieces the previous one left). A missing name is llama.cpp's "default". Names llama.cpp handles
    /// with custom code rather than patterns (kimi-k2, afmoe, superbpe) and unknown names throw, listing the known ones.
    /// </summary>
    public static PreTokenizer FromGgufName(string? name)
    {
        string key = (name ?? "default").Trim().ToLowerInvariant();
        if (s_known.TryGetValue(key, out var make)) return make(name ?? "default");
        throw new TokenizerFormatException(
            $"GGUF tokenizer.ggml.pre '{name}' is not a known pre-tokenizer. Supported (llama.cpp's names): {string.Join(", ", s_known.Keys.Order(StringComparer.Ordinal))}. " +
            "Re-convert the model with a llama.cpp that writes one of these, or use its Hugging Face folder (tokenizer.json).");
    }

    /// <summary>Every tokenizer.ggml.pre name <see cref="FromGgufName"/> accepts.</summary>
    public static IReadOnlyCollection<string> KnownGgufNames => s_known.Keys;

    // Patterns of llama.cpp's pre-tokenizer types that are not one of the hand-written splitters. Where llama.cpp
    // rewrote a tokenizer.json regex for std::regex (case-insensitive contractions spelled out, \p{Lu}-classes
    // emulated with lookaheads), the original tokenizer.json regex is used: it is what the model was trained with.
    internal const string Gpt2NoTail = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    internal const string Gpt4oRegex = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal const string TekkenRegex = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string PoroRegex = @" ?[^(\s|.,!?…。，、।۔،)]+";
    // deepseek-llm's letter class; llama.cpp's also lists ranges outside the BMP (Deseret, Osage, Old Hungarian, Warang
    // Citi, Adlam), which a UTF-16 character class cannot hold: letters there are left to the later patterns.
    private const string DeepseekLetters = "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝ\u1F5F-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ";

    private static PreTokenizer Staged(string name, params string[] patterns) => new RegexSplitter(name, patterns);

    private static readonly Dictionary<string, Func<string, PreTokenizer>> s_known = BuildKnown();

    private static Dictionary<string, Func<string, PreTokenizer>> BuildKnown()
    {
        var d = new Dictionary<string, Func<string, PreTokenizer>>(StringComparer.Ordinal);
        void Add(Func<string, PreTokenizer> make, params string[] names) { foreach (var n in names) d[n] = make; }
        // LLAMA_VOCAB_PRE_TYPE_DEFAULT (also what llama.cpp uses when the key is missing)
        Add(n => Staged(n, @"[\p{P}\$\+<=>\^~\|]+", Gpt2NoTail, @"\p{N}+", "[0-9][0-9][0-9]"), "default");
        // GPT2, MPT, OLMO, JAIS, TRILLION, GRANITE_DOCLING (and "gpt2", the name tokenizer.json loading uses)
        Add(n => new HandWritten(Pattern.Gpt2, n), "gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
            "a.x-4.0", "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "exaone4", "trillion", "granite-docling");
        // LLAMA3, DBRX, SMAUG, CHATGLM4 (same pattern); cl100k is the same regex under tiktoken's name
        Add(n => new HandWritten(Pattern.Llama3, n) { IgnoreMerges = true }, "llama3", "llama-v3", "llama-bpe", "llama-3", "falcon3", "falcon-h1",
            "pixtral", "midm-2.0", "lfm2", "jina-v5-nano");
        Add(n => new HandWritten(Pattern.Llama3, n), "dbrx", "smaug-bpe", "glm4", "chatglm-bpe", "cl100k");
        // QWEN2, STABLELM2, HUNYUAN, GROK_2 (same pattern)
        Add(n => new HandWritten(Pattern.Qwen2, n), "qwen2", "qwen", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2");
        // STARCODER, REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA: every digit alone, then GPT-2
        Add(n => new HandWritten(Pattern.DigitsThenGpt2, n), "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "minerva");
        Add(n => Staged(n, "[\r\n]", $"\\s?[{DeepseekLetters}]+", "\\s?[!-/:-~！-／：-～‘-‟　-。]+", @"\s+$", "[一-龥ࠀ-一가-퟿]+", @"\p{N}+"), "deepseek-llm");
        Add(n => Staged(n, "[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", @"\p{N}"), "deepseek-coder");
        Add(n => Staged(n, @"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
            @"[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            "deepseek-v3", "hunyuan-dense");
        Add(n => Staged(n, @"[\p{P}\$\+<=>\^~\|`]+", Gpt2NoTail, "[0-9][0-9][0-9]"), "falcon");
        Add(n => Staged(n, PoroRegex), "poro-chat", "bloom", "gpt3-finnish");
        Add(n => Staged(n, PoroRegex, @"\p{N}"), "viking");
        Add(n => new RegexSplitter(n, [TekkenRegex]) { IgnoreMerges = true }, "tekken");
        Add(n => Staged(n, Gpt4oRegex), "gpt-4o", "llama4", "minimax-m2", "o200k");
        Add(n => Staged(n, "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", @"\p{N}", @"[\p{P}!-/:-@\[-`{-~]", Gpt2NoTail), "chameleon");
        Add(n => Staged(n, @"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"), "bailingmoe", "bailingmoe2", "llada-moe");
        Add(n => Staged(n, @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"), "seed-coder");
        return d;
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

    /// <summary>
    /// Split patterns applied one after another (llama.cpp's regex_exprs): each pattern cuts every piece left by the
    /// previous one into its matches and the gaps between them. One pattern is a tokenizer.json Split with behavior
    /// Isolated. Runs on .NET Regex over UTF-16 units, so letters outside the BMP are not \p{L} here.
    /// </summary>
    private sealed class RegexSplitter : PreTokenizer
    {
        private readonly Regex[] _stages;
        private readonly string _name;

        public RegexSplitter(string pattern) : this("regex:" + pattern, [pattern]) { }

        public RegexSplitter(string name, string[] patterns)
        {
            _name = name;
            _stages = patterns.Select(p => new Regex(p, RegexOptions.Compiled | RegexOptions.CultureInvariant)).ToArray();
        }

        public override string Name => _name;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override void Split(ReadOnlySpan<char> text, List<(int Start, int End)> words)
        {
            if (_stages.Length == 1) { SplitOne(_stages[0], text, 0, text.Length, words); return; }
            var current = new List<(int, int)> { (0, text.Length) };
            var next = new List<(int, int)>();
            foreach (var rx in _stages)
            {
                next.Clear();
                foreach (var (s, e) in current) SplitOne(rx, text, s, e, next);
                (current, next) = (next, current);
            }
            words.AddRange(current);
        }

        private static void SplitOne(Regex rx, ReadOnlySpan<char> text, int start, int end, List<(int Start, int End)> words)
        {
            if (end <= start) return;
            int last = start;
            foreach (ValueMatch m in rx.EnumerateMatches(text[start..end]))
            {
                if (m.Length == 0) continue;
                int ms = start + m.Index;
                if (ms > last) words.Add((last, ms));
                words.Add((ms, ms + m.Length));
                last = ms + m.Length;
            }
            if (last < end) words.Add((last, end));
        }
    }
}
