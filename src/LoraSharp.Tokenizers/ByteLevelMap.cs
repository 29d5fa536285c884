// GPT-2's byte-to-unicode table: printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves, the other 68 bytes to
// U+0100.. in byte order, so every byte sequence is a string of visible characters ("Ġ" = space, "Ċ" = newline).
namespace LoraSharp.Tokenizers;

internal static class ByteLevelMap
{
    public static readonly char[] ByteToChar = Build();
    private static readonly int[] s_charToByte = BuildReverse();

    private static char[] Build()
    {
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return map;
    }

    private static int[] BuildReverse()
    {
        var r = new int[512];
        Array.Fill(r, -1);
        for (int b = 0; b < 256; b++) r[ByteToChar[b]] = b;
        return r;
    }

    /// <summary>The bytes a byte-level piece stands for; characters outside the table are kept as their UTF-8.</summary>
    public static byte[] PieceToBytes(string piece)
    {
        var bytes = new List<byte>(piece.Length);
        foreach (char c in piece)
        {
            int b = c < 512 ? s_charToByte[c] : -1;
            if (b >= 0) bytes.Add((byte)b);
            else bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(c.ToString()));
        }
        return bytes.ToArray();
    }
}
