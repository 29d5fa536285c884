// Tokenizer throughput: single-threaded encode MB/s (UTF-8 bytes of input per second) on War and Peace with the
// stories260K, Llama-2 (32k SentencePiece tokenizer.json) and Llama-3 (128k byte-level encoder.json + vocab.bpe)
// tokenizers, cold (fresh tokenizer, empty word cache) and warm (best of 3), plus the time to encode a 1 MB line
// without spaces (no cache can help; shows the O(n log n) merge loop). Target: >= 5 MB/s. Not a test.
// Process CPU time is printed beside wall time: on a shared, overloaded machine it is the steadier number.
using System.Diagnostics;
using System.Text;
using LoraSharp.Tokenizers;

namespace LoraSharp.Bench;

/// <summary>Encode throughput of the tokenizers.</summary>
public static class TokenizerBench
{
    /// <summary>Runs the benchmark and prints one line per tokenizer.</summary>
    /// <param name="output">Where to print.</param>
    /// <param name="sharedDir">The ../shared fixtures folder.</param>
    public static void Run(TextWriter output, string sharedDir)
    {
        string text = File.ReadAllText(Path.Combine(sharedDir, "text", "war-and-peace.txt"));
        double mb = Encoding.UTF8.GetByteCount(text) / 1e6;
        var rng = new Random(7);
        var sb = new StringBuilder(1_000_000);
        while (sb.Length < 1_000_000) sb.Append((char)('a' + rng.Next(26)));
        string longLine = sb.ToString();

        var cases = new (string Name, Func<Tokenizer> Load)[]
        {
            ("stories260K (tokenizer.json, 512)", () => TokenizerLoader.FromFile(Path.Combine(sharedDir, "models", "stories260K-hf", "tokenizer.json"))),
            ("Llama-2 (tokenizer.json, 32k)", () => TokenizerLoader.FromFile(Path.Combine(sharedDir, "tokenizers", "hf-tokenizer-json", "llama-tiny-random", "tokenizer.json"))),
            ("Llama-3 (encoder.json+vocab.bpe, 128k)", () => TokenizerLoader.FromFile(Path.Combine(sharedDir, "tokenizers", "llama3-bpe"))),
        };
        output.WriteLine($"Tokenizer encode, single thread, war-and-peace.txt ({mb:F2} MB), target >= 5 MB/s");
        foreach (var (name, load) in cases)
        {
            var sw = Stopwatch.StartNew();
            var tok = load();
            double loadS = sw.Elapsed.TotalSeconds;
            var ccpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            int count = tok.EncodeToIds(text, addSpecialTokens: false).Length;
            double cold = sw.Elapsed.TotalSeconds;
            double coldCpu = (Process.GetCurrentProcess().TotalProcessorTime - ccpu0).TotalSeconds;
            double warm = double.MaxValue, warmCpu = double.MaxValue;
            for (int r = 0; r < 3; r++)
            {
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                sw.Restart();
                tok.EncodeToIds(text, addSpecialTokens: false);
                warm = Math.Min(warm, sw.Elapsed.TotalSeconds);
                warmCpu = Math.Min(warmCpu, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
            }
            sw.Restart();
            var ids = tok.EncodeToIds(text, addSpecialTokens: false);
            string back = tok.Decode(ids);
            double decode = sw.Elapsed.TotalSeconds;
            var lcpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            int longCount = tok.EncodeToIds(longLine, addSpecialTokens: false).Length;
            double longS = sw.Elapsed.TotalSeconds;
            double longCpu = (Process.GetCurrentProcess().TotalProcessorTime - lcpu0).TotalSeconds;
            output.WriteLine(
                $"  {name,-40} load {loadS,5:F2} s | {count,8} tokens | encode cold {mb / cold,6:F1} MB/s (CPU time: {mb / coldCpu,6:F1}), warm {mb / warm,6:F1} MB/s (CPU time: {mb / warmCpu,6:F1})" +
                $" | encode+decode {mb / decode,6:F1} MB/s{(back == text ? "" : " (ROUND TRIP DIFFERS)")}" +
                $" | 1 MB line w/o spaces {longS * 1000,7:F0} ms (CPU {longCpu * 1000:F0} ms, {longCount} tokens)");
        }
    }
}
