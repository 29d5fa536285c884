// GGUF vocabularies for the conformance tests: the real GGUF reader (Formats) and the real metadata-to-tokenizer
// mapping (Models.Loading.GgufTokenizer), plus the llama.cpp .inp/.out test-case files.
using LoraSharp.Formats.Gguf;
using LoraSharp.Models.Loading;

namespace LoraSharp.Tokenizers.Tests;

internal static class GgufTestVocab
{
    /// <summary>The tokenizer described by a GGUF file's tokenizer.ggml.* metadata.</summary>
    public static Tokenizer Load(string path)
    {
        using var gguf = GgufFile.Open(path);
        return GgufTokenizer.FromMetadata(gguf.Metadata, path);
    }

    /// <summary>The llama.cpp test cases: .inp cases separated by "\n__ggml_vocab_test__\n", .out one line of ids per case.</summary>
    public static List<(string Text, int[] Ids)> Cases(string ggufPath)
    {
        string inp = File.ReadAllText(ggufPath + ".inp");
        string[] outLines = File.ReadAllText(ggufPath + ".out").Split('\n');
        var texts = inp.Split("\n__ggml_vocab_test__\n");
        var cases = new List<(string, int[])>();
        for (int i = 0; i < texts.Length; i++)
        {
            if (i == texts.Length - 1 && texts[i].Length == 0) break;
            int[] ids = outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
            cases.Add((texts[i], ids));
        }
        return cases;
    }
}
