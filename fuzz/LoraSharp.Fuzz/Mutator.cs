// Deterministic byte-level mutations in the style of AFL's havoc stage: bit flips, random bytes, "interesting"
// integers (0, -1, 2^n +- 1, INT_MAX, ...) written at 1/2/4/8-byte widths in both byte orders, small arithmetic,
// deletions, insertions, duplicated blocks, splices with another corpus input, truncation, edits of what look like
// little-endian length fields (set to the bytes left, one more, or huge), and dictionary words for text formats.
// A given (seed, corpus) always produces the same sequence, so every finding replays from its seed.
using System.Buffers.Binary;

namespace LoraSharp.Fuzz;

/// <summary>Mutates inputs; not thread-safe (one per engine).</summary>
public sealed class Mutator(ulong seed, IReadOnlyList<byte[]> dictionary, int maxLength)
{
    private ulong _state = seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;

    private static readonly long[] s_interesting =
    [
        0, 1, -1, 2, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256, 512, 1000, 1023, 1024, 4095, 4096, 32767, 32768,
        65535, 65536, 100000, int.MaxValue, int.MinValue, (long)int.MaxValue + 1, uint.MaxValue, (long)uint.MaxValue + 1,
        long.MaxValue, long.MinValue, -2, -128, -129, -32768, 1L << 40, (1L << 53) + 1,
    ];

    /// <summary>Next pseudo-random 64-bit value (xorshift64*).</summary>
    public ulong Next()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return _state * 0x2545F4914F6CDD1DUL;
    }

    /// <summary>A value in [0, n).</summary>
    public int Below(int n) => n <= 1 ? 0 : (int)(Next() % (ulong)n);

    /// <summary>A mutated copy of <paramref name="input"/> (1 to 16 stacked mutations); <paramref name="other"/> feeds splices.</summary>
    public byte[] Mutate(byte[] input, byte[] other)
    {
        var buf = new List<byte>(input);
        int rounds = 1 << Below(5);
        for (int r = 0; r < rounds; r++) MutateOnce(buf, other);
        if (buf.Count > maxLength) buf.RemoveRange(maxLength, buf.Count - maxLength);
        return [.. buf];
    }

    private void MutateOnce(List<byte> b, byte[] other)
    {
        int kind = Below(dictionary.Count > 0 ? 16 : 13);
        if (b.Count == 0 && kind < 9) kind = 9;
        switch (kind)
        {
            case 0: // bit flip
                { int i = Below(b.Count); b[i] ^= (byte)(1 << Below(8)); break; }
            case 1: // random byte
                b[Below(b.Count)] = (byte)Next(); break;
            case 2: // interesting value at width 1/2/4/8, either byte order
            case 3:
                {
                    int width = 1 << Below(4);
                    if (b.Count < width) break;
                    long v = s_interesting[Below(s_interesting.Length)];
                    Put(b, Below(b.Count - width + 1), width, v, bigEndian: Below(4) == 0);
                    break;
                }
            case 4: // small arithmetic on a 1/2/4/8-byte little-endian field
                {
                    int width = 1 << Below(4);
                    if (b.Count < width) break;
                    int at = Below(b.Count - width + 1);
                    long v = Get(b, at, width) + (Below(2) == 0 ? 1 : -1) * (1 + Below(35));
                    Put(b, at, width, v, false);
                    break;
                }
            case 5: // length-field edit: an aligned u32/u64 set to the bytes after it, one more, double, or huge
                {
                    int width = Below(2) == 0 ? 4 : 8;
                    if (b.Count < width) break;
                    int at = Below((b.Count - width) / width + 1) * width;
                    long left = b.Count - at - width;
                    long v = Below(5) switch { 0 => left, 1 => left + 1, 2 => left * 2 + 1, 3 => (long)uint.MaxValue * 16, _ => Math.Max(0, left - 1) };
                    Put(b, at, width, v, false);
                    break;
                }
            case 6: // delete a block
                {
                    int n = 1 + Below(Math.Min(b.Count, Below(3) == 0 ? 256 : 16));
                    b.RemoveRange(Below(b.Count - n + 1), n);
                    break;
                }
            case 7: // duplicate a block somewhere
                {
                    int n = 1 + Below(Math.Min(b.Count, 64));
                    int from = Below(b.Count - n + 1);
                    var block = b.GetRange(from, n);
                    int times = Below(8) == 0 ? 1 + Below(64) : 1;
                    for (int t = 0; t < times && b.Count < maxLength; t++) b.InsertRange(Below(b.Count + 1), block);
                    break;
                }
            case 8: // truncate
                { int keep = Below(b.Count); b.RemoveRange(keep, b.Count - keep); break; }
            case 9: // insert random bytes
                {
                    int n = 1 + Below(8);
                    int at = Below(b.Count + 1);
                    for (int i = 0; i < n; i++) b.Insert(at, (byte)Next());
                    break;
                }
            case 10: // splice: our head + other's tail
                {
                    if (other.Length == 0) break;
                    int cut = Below(b.Count + 1), from = Below(other.Length);
                    b.RemoveRange(cut, b.Count - cut);
                    b.AddRange(other.AsSpan(from).ToArray());
                    break;
                }
            case 11: // overwrite with a block of the other input
                {
                    if (other.Length == 0 || b.Count == 0) break;
                    int n = 1 + Below(Math.Min(other.Length, 32));
                    int from = Below(other.Length - n + 1), to = Below(b.Count);
                    for (int i = 0; i < n && to + i < b.Count; i++) b[to + i] = other[from + i];
                    break;
                }
            case 12: // a run of one byte value
                {
                    int n = 1 + Below(Below(4) == 0 ? 512 : 8);
                    byte v = Below(2) == 0 ? (byte)Next() : b.Count > 0 ? b[Below(b.Count)] : (byte)0;
                    int at = Below(b.Count + 1);
                    b.InsertRange(at, Enumerable.Repeat(v, n));
                    break;
                }
            default: // dictionary word: insert or overwrite
                {
                    var w = dictionary[Below(dictionary.Count)];
                    int at = Below(b.Count + 1);
                    if (Below(2) == 0 || at + w.Length > b.Count) b.InsertRange(at, w);
                    else for (int i = 0; i < w.Length; i++) b[at + i] = w[i];
                    break;
                }
        }
    }

    private static void Put(List<byte> b, int at, int width, long v, bool bigEndian)
    {
        Span<byte> tmp = stackalloc byte[8];
        if (bigEndian) BinaryPrimitives.WriteInt64BigEndian(tmp, v << (64 - 8 * width));
        else BinaryPrimitives.WriteInt64LittleEndian(tmp, v);
        for (int i = 0; i < width; i++) b[at + i] = tmp[i];
    }

    private static long Get(List<byte> b, int at, int width)
    {
        long v = 0;
        for (int i = width - 1; i >= 0; i--) v = (v << 8) | b[at + i];
        return v;
    }
}
