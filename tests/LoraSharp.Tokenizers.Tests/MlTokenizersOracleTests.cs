// Microsoft.ML.Tokenizers 3.0.0 as an independent oracle on the whole of War and Peace (3.2 MB): its tiktoken-style
// tokenizer (rank-ordered byte-pair merges, its own regex pre-tokenizer) must give the same ids as LoraSharp's
// byte-level BPE for
//   * GPT-2: ML's gpt2 data package against ../shared/tokenizers/gpt2-bpe (encoder.json + vocab.bpe, "gpt2" pre),
//   * Llama 3: ML built from ../shared/tokenizers/llama3-bpe's pieces as tiktoken ranks with the Llama-3 regex,
//     against LoraSharp's hand-written "llama-bpe" splitter and merges,
//   * GPT-4o (o200k, pre "gpt-4o"): ML's o200k data package against a LoraSharp tokenizer built from the same ranks
//     (merges derived from ranks the way transformers converts tiktoken files).
using System.Text;
using System.Text.RegularExpressions;
using LoraSharp.TestSupport;
using Ml = Microsoft.ML.Tokenizers;

namespace LoraSharp.Tokenizers.Tests;

public class MlTokenizersOracleTests
{
    private static readonly Lazy<string> s_warAndPeace = new(() => File.ReadAllText(SharedFixtures.Path("text", "war-and-peace.txt")));

    private static void AssertSameIds(IReadOnlyList<int> expected, int[] got, Tokenizer ours, string what)
    {
        int n = Math.Min(expected.Count, got.Length), i = 0;
        while (i < n && expected[i] == got[i]) i++;
        if (i == n && expected.Count == got.Length) return;
        string Ctx(IEnumerable<int> ids) => ours.Decode(ids.Skip(Math.Max(0, i - 3)).Take(8).ToArray());
        Assert.Fail($"{what}: first difference at token {i} of {expected.Count} (ML) / {got.Length} (LoraSharp): " +
                    $"ML {expected.ElementAtOrDefault(i)} vs {got.ElementAtOrDefault(i)}; ML context '{Ctx(expected)}', ours '{Ctx(got)}'");
    }

    [Fact]
    public void Gpt2_WarAndPeace_SameIdsAsMlTokenizers()
    {
        var ml = Ml.TiktokenTokenizer.CreateForModel("gpt2");
        string text = s_warAndPeace.Value;
        AssertSameIds(ml.EncodeToIds(text), Fixtures.Gpt2Files.EncodeToIds(text, addSpecialTokens: false, parseSpecialTokens: false), Fixtures.Gpt2Files, "GPT-2");
    }

    [Fact]
    public void Llama3_WarAndPeace_SameIdsAsMlTokenizers()
    {
        var ours = Fixtures.Llama3Files;
        var ranks = new StringBuilder();
        var vocab = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(SharedFixtures.Path("tokenizers", "llama3-bpe", "encoder.json")))!;
        foreach (var (piece, id) in vocab.OrderBy(kv => kv.Value))
            ranks.Append(Convert.ToBase64String(FromByteLevel(piece))).Append(' ').Append(id).Append('\n');
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(ranks.ToString()));
        var ml = Ml.TiktokenTokenizer.Create(stream, new Ml.RegexPreTokenizer(new Regex(PreTokenizer.Llama3Regex, RegexOptions.Compiled), null), null);
        string text = s_warAndPeace.Value;
        AssertSameIds(ml.EncodeToIds(text), ours.EncodeToIds(text, addSpecialTokens: false, parseSpecialTokens: false), ours, "Llama 3");
    }

    [Fact]
    public void Gpt4o_O200k_WarAndPeace_SameIdsAsMlTokenizers()
    {
        var ml = Ml.TiktokenTokenizer.CreateForModel("gpt-4o");
        // The ranks ML uses: its data package's embedded o200k_base.tiktoken (deflated, a "Capacity:" header then one token per line).
        var asm = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.O200kBase");
        string res = asm.GetManifestResourceNames().Single(n => n.EndsWith(".tiktoken.deflate", StringComparison.Ordinal));
        using var reader = new StreamReader(new System.IO.Compression.DeflateStream(asm.GetManifestResourceStream(res)!, System.IO.Compression.CompressionMode.Decompress));
        var ranked = new List<(byte[] Bytes, int Rank)>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            if (line.StartsWith("Capacity:", StringComparison.Ordinal)) continue; // ML's header line
            int sp = line.IndexOf(' ');
            // "base64 rank", or "base64" alone with the rank implied by the line's position
            ranked.Add(sp < 0 ? (Convert.FromBase64String(line), ranked.Count)
                : (Convert.FromBase64String(line[..sp]), int.Parse(line[(sp + 1)..], System.Globalization.CultureInfo.InvariantCulture)));
        }
        ranked.Sort((a, b) => a.Rank.CompareTo(b.Rank));
        Assert.Equal(ranked.Count - 1, ranked[^1].Rank);
        var tokens = new string[ranked.Count];
        var byBytes = new Dictionary<string, int>(ranked.Count);
        foreach (var (bytes, rank) in ranked)
        {
            tokens[rank] = ToByteLevel(bytes);
            byBytes[tokens[rank]] = rank;
        }
        // transformers' TikTokenConverter: for each piece in rank order, every split into two pieces, ordered by the
        // halves' ranks.
        var merges = new List<(string, string)>();
        foreach (var t in tokens)
        {
            if (t.Length < 2) continue;
            var local = new List<(string L, string R, int RL, int RR)>();
            for (int i = 1; i < t.Length; i++)
                if (byBytes.TryGetValue(t[..i], out int rl) && byBytes.TryGetValue(t[i..], out int rr)) local.Add((t[..i], t[i..], rl, rr));
            foreach (var m in local.OrderBy(m => m.RL).ThenBy(m => m.RR)) merges.Add((m.L, m.R));
        }
        var ours = ByteLevelBpe.FromMerges(tokens, merges, [], "gpt-4o");
        string text = s_warAndPeace.Value;
        AssertSameIds(ml.EncodeToIds(text), ours.EncodeToIds(text, addSpecialTokens: false, parseSpecialTokens: false), ours, "GPT-4o o200k");
    }

    // GPT-2's byte <-> printable character map (bytes_to_unicode).
    private static readonly char[] s_byteToChar = BuildMap();

    private static char[] BuildMap()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    private static string ToByteLevel(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(s_byteToChar[b]);
        return sb.ToString();
    }

    private static byte[] FromByteLevel(string piece)
    {
        var bytes = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++) bytes[i] = (byte)Array.IndexOf(s_byteToChar, piece[i]);
        return bytes;
    }
}
