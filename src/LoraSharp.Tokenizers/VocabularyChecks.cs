// Validation and conversions shared by the factories: token types, special ids, ranked merges. Errors name the field.
namespace LoraSharp.Tokenizers;

internal static class VocabularyChecks
{
    public static TokenType[] Types(string[] tokens, int[]? tokenTypes)
    {
        for (int i = 0; i < tokens.Length; i++)
            if (tokens[i] is null)
                throw new TokenizerFormatException($"tokenizer.ggml.tokens[{i}] is null; every id needs a piece.") { Field = "tokenizer.ggml.tokens" };
        var types = new TokenType[tokens.Length];
        if (tokenTypes is null)
        {
            for (int i = 0; i < tokens.Length; i++)
            {
                string p = tokens[i];
                types[i] = p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' ? TokenType.Byte : TokenType.Normal;
            }
            return types;
        }
        if (tokenTypes.Length != tokens.Length)
            throw new TokenizerFormatException(
                $"tokenizer.ggml.token_type has {tokenTypes.Length} entries but tokenizer.ggml.tokens has {tokens.Length}; they must match.") { Field = "tokenizer.ggml.token_type" };
        for (int i = 0; i < tokens.Length; i++)
        {
            if (tokenTypes[i] is < 0 or > 6)
                throw new TokenizerFormatException(
                    $"tokenizer.ggml.token_type[{i}] = {tokenTypes[i]} is not a token type (0..6: undefined, normal, unknown, control, user-defined, unused, byte).") { Field = "tokenizer.ggml.token_type" };
            types[i] = (TokenType)tokenTypes[i];
        }
        return types;
    }

    public static void Ids(int vocabSize, int bos, int eos, int unk, int pad)
    {
        Check("tokenizer.ggml.bos_token_id", bos);
        Check("tokenizer.ggml.eos_token_id", eos);
        Check("tokenizer.ggml.unknown_token_id", unk);
        Check("tokenizer.ggml.padding_token_id", pad);
        void Check(string field, int id)
        {
            if (id < -1 || id >= vocabSize)
                throw new TokenizerFormatException($"{field} = {id} is outside the vocabulary (0..{vocabSize - 1}); use -1 for none.") { Field = field };
        }
    }

    /// <summary>Control and unknown tokens are special added tokens; user-defined ones are non-special added tokens.</summary>
    public static List<AddedToken> AddedFromTypes(string[] tokens, TokenType[] types)
    {
        var list = new List<AddedToken>();
        for (int i = 0; i < tokens.Length; i++)
        {
            if (tokens[i].Length == 0) continue;
            if (types[i] is TokenType.Control or TokenType.Unknown) list.Add(new AddedToken(i, tokens[i], Special: true));
            else if (types[i] == TokenType.UserDefined) list.Add(new AddedToken(i, tokens[i], Special: false));
        }
        return list;
    }

    public static BpeMerges RankedMerges(string[] tokens, IReadOnlyList<(string Left, string Right)> merges, string field, string? file = null)
    {
        var lookup = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) if (tokens[i].Length > 0) lookup.TryAdd(tokens[i], i);
        var alt = lookup.GetAlternateLookup<ReadOnlySpan<char>>();
        var table = new BpeMerges(merges.Count);
        Span<char> buf = stackalloc char[256];
        for (int r = 0; r < merges.Count; r++)
        {
            var (l, rt) = merges[r];
            if (l is null || rt is null || !lookup.TryGetValue(l, out int left) || !lookup.TryGetValue(rt, out int right))
                throw TokenizerFormatException.For(file, $"{field}[{r}]", $"= \"{l} {rt}\" names a piece that is not in the vocabulary.");
            int len = l.Length + rt.Length;
            Span<char> both = len <= buf.Length ? buf[..len] : new char[len];
            l.AsSpan().CopyTo(both);
            rt.AsSpan().CopyTo(both[l.Length..]);
            if (!alt.TryGetValue(both, out int merged))
                throw TokenizerFormatException.For(file, $"{field}[{r}]", $"= \"{l} {rt}\": the merged piece \"{l}{rt}\" is not in the vocabulary.");
            table.TryAdd(left, right, r, merged);
        }
        return table;
    }

    /// <summary>Parses a merge written as "left right" (vocab.bpe, GGUF, older tokenizer.json).</summary>
    public static (string, string) SplitMerge(string merge, string field, int index, string? file)
    {
        int sp = merge.IndexOf(' ', 1);
        if (sp <= 0 || sp == merge.Length - 1)
            throw TokenizerFormatException.For(file, $"{field}[{index}]", $"= \"{merge}\" is not a merge; expected \"left right\" (two pieces separated by one space).");
        return (merge[..sp], merge[(sp + 1)..]);
    }
}
