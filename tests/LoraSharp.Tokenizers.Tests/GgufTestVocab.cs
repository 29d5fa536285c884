// TEST UTILITY ONLY (temporary): reads the tokenizer.* key/values of a GGUF file so the tests can drive
// SentencePieceBpe.FromVocabulary / ByteLevelBpe.FromVocabulary from the real llama.cpp vocabulary files.
// The real GGUF reader lives in LoraSharp.Formats; the integrator will switch these tests to it.
// Layout (ggml gguf.h, version 2/3, little-endian): "GGUF" u32 version, u64 n_tensors, u64 n_kv, then n_kv times
// { string key, i32 type, value }; string = u64 length + UTF-8 bytes; type 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32,
// 6 f32, 7 bool (1 byte), 8 string, 9 array (i32 element type, u64 count, elements), 10 u64, 11 i64, 12 f64.
// Tensor infos and data follow; they are not read.
using System.Text;
using LoraSharp.Tokenizers;

namespace LoraSharp.Tokenizers.Tests;

internal static class GgufTestVocab
{
    public static Dictionary<string, object> ReadMetadata(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        if (r.ReadUInt32() != 0x46554747) throw new InvalidDataException($"{path} is not GGUF (magic).");
        uint version = r.ReadUInt32();
        if (version is < 2 or > 3) throw new InvalidDataException($"{path}: GGUF version {version} not handled by this test utility.");
        r.ReadUInt64();
        ulong nkv = r.ReadUInt64();
        var kv = new Dictionary<string, object>();
        for (ulong i = 0; i < nkv; i++)
        {
            string key = ReadString(r);
            kv[key] = ReadValue(r, r.ReadInt32());
        }
        return kv;
    }

    private static string ReadString(BinaryReader r)
    {
        ulong n = r.ReadUInt64();
        return Encoding.UTF8.GetString(r.ReadBytes(checked((int)n)));
    }

    private static object ReadValue(BinaryReader r, int type) => type switch
    {
        0 => (long)r.ReadByte(), 1 => (long)r.ReadSByte(), 2 => (long)r.ReadUInt16(), 3 => (long)r.ReadInt16(),
        4 => (long)r.ReadUInt32(), 5 => (long)r.ReadInt32(), 6 => (double)r.ReadSingle(), 7 => r.ReadByte() != 0,
        8 => ReadString(r), 10 => (long)r.ReadUInt64(), 11 => r.ReadInt64(), 12 => r.ReadDouble(),
        9 => ReadArray(r),
        _ => throw new InvalidDataException($"GGUF value type {type} unknown."),
    };

    private static object[] ReadArray(BinaryReader r)
    {
        int et = r.ReadInt32();
        ulong n = r.ReadUInt64();
        var a = new object[checked((int)n)];
        for (int i = 0; i < a.Length; i++) a[i] = ReadValue(r, et);
        return a;
    }

    /// <summary>Builds the tokenizer the way LoraSharp.Models will: GGUF keys -> FromVocabulary arguments.</summary>
    public static Tokenizer Load(string path)
    {
        var kv = ReadMetadata(path);
        string model = (string)kv["tokenizer.ggml.model"];
        string[] tokens = ((object[])kv["tokenizer.ggml.tokens"]).Cast<string>().ToArray();
        int[]? types = kv.TryGetValue("tokenizer.ggml.token_type", out var tt) ? ((object[])tt).Select(o => (int)(long)o).ToArray() : null;
        int Id(string key) => kv.TryGetValue(key, out var v) ? (int)(long)v : -1;
        bool? Flag(string key) => kv.TryGetValue(key, out var v) ? (bool)v : null;
        string? pre = kv.TryGetValue("tokenizer.ggml.pre", out var p) ? (string)p : null;
        if (model == "llama")
        {
            float[] scores = ((object[])kv["tokenizer.ggml.scores"]).Select(o => (float)(double)o).ToArray();
            return SentencePieceBpe.FromVocabulary(tokens, scores, types,
                Id("tokenizer.ggml.bos_token_id"), Id("tokenizer.ggml.eos_token_id"), Id("tokenizer.ggml.unknown_token_id"),
                Id("tokenizer.ggml.padding_token_id"), Flag("tokenizer.ggml.add_bos_token") ?? true,
                Flag("tokenizer.ggml.add_eos_token") ?? false, Flag("tokenizer.ggml.add_space_prefix") ?? true);
        }
        if (model == "gpt2")
        {
            string[] merges = ((object[])kv["tokenizer.ggml.merges"]).Cast<string>().ToArray();
            return ByteLevelBpe.FromVocabulary(tokens, merges, types, pre,
                Id("tokenizer.ggml.bos_token_id"), Id("tokenizer.ggml.eos_token_id"), Id("tokenizer.ggml.unknown_token_id"),
                Id("tokenizer.ggml.padding_token_id"), Flag("tokenizer.ggml.add_bos_token") ?? false,
                Flag("tokenizer.ggml.add_eos_token") ?? false);
        }
        throw new NotSupportedException($"tokenizer.ggml.model '{model}'");
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
