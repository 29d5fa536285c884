// Every crash the fuzzer found, as the smallest input that showed it (minimised by hand from the findings), run
// through the same target: each must now be rejected with the parser's documented exception, whose message names
// the problem. Saved finding files under FuzzRegressions/<target>/*.bin are replayed as well.
using System.Text;
using LoraSharp.Formats;
using LoraSharp.Formats.Gguf;

namespace LoraSharp.Fuzz.Tests;

public class RegressionTests
{
    private static Exception Rejected(string target, byte[] input)
    {
        var t = Targets.Find(target);
        using var ws = new FuzzWorkspace(t.Name);
        var finding = FuzzEngine.RunOne(t, input, ws, out bool parsed, out _);
        Assert.True(finding == null, finding?.ToString());
        Assert.False(parsed, "the input was accepted; it should have been rejected");
        try
        {
            t.Run(input, ws);
        }
        catch (Exception e)
        {
            return e;
        }
        throw new Xunit.Sdk.XunitException("no exception on the second run");
    }

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    // A GGUF v3 file written by hand: kvs as (key, type, value bytes), tensors as (name, dims, ggml type), no data.
    private static byte[] Gguf(IEnumerable<(string Key, GgufValueType Type, byte[] Value)> kvs, IEnumerable<(string Name, long[] Dims, uint Type)> tensors)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        void Str(string s) { var b = U(s); w.Write((ulong)b.Length); w.Write(b); }
        var kvList = kvs.ToList();
        var tList = tensors.ToList();
        w.Write(GgufFile.Magic); w.Write(3u); w.Write((ulong)tList.Count); w.Write((ulong)kvList.Count);
        foreach (var (k, type, v) in kvList) { Str(k); w.Write((uint)type); w.Write(v); }
        foreach (var (n, dims, type) in tList) { Str(n); w.Write((uint)dims.Length); foreach (var d in dims) w.Write(d); w.Write(type); w.Write(0UL); }
        while (ms.Length % 32 != 0) w.Write((byte)0);
        w.Write(new byte[64]);
        return ms.ToArray();
    }

    private static byte[] StrValue(string s) { var b = U(s); return [.. BitConverter.GetBytes((ulong)b.Length), .. b]; }

    [Fact]
    public void Gguf_BlockTypedScalar_IsRejected()
    {
        // Was ArgumentException from Tensor.View: "1 elements is not a whole number of Q8_0 blocks of 32".
        var e = Rejected("gguf", Gguf([], [("t", [], 8u)]));
        Assert.IsType<ModelFormatException>(e);
        Assert.Contains("scalar", e.Message);
    }

    [Fact]
    public void Gguf_ConfigIntegerBeyondInt_IsRejected()
    {
        // Was OverflowException from LlamaConfigReader's checked cast.
        var e = Rejected("gguf", Gguf([("general.architecture", GgufValueType.String, StrValue("llama")),
            ("llama.embedding_length", GgufValueType.UInt64, BitConverter.GetBytes(1UL << 40))], []));
        Assert.IsType<ModelFormatException>(e);
        Assert.Contains("llama.embedding_length", e.Message);
    }

    [Fact]
    public void Gguf_ArchitectureNotAString_IsRejected()
    {
        var e = Rejected("gguf", Gguf([("general.architecture", GgufValueType.UInt32, BitConverter.GetBytes(7u))], []));
        Assert.IsType<ModelFormatException>(e);
        Assert.Contains("general.architecture", e.Message);
    }

    [Fact]
    public void Gguf_TokenizerModelNotAString_IsRejected()
    {
        var e = Rejected("gguf", Gguf([("tokenizer.ggml.model", GgufValueType.Int32, BitConverter.GetBytes(1)),
            ("tokenizer.ggml.tokens", GgufValueType.Int32, BitConverter.GetBytes(1))], []));
        Assert.IsAssignableFrom<Core.UserErrorException>(e);
        Assert.Contains("tokenizer.ggml.model", e.Message);
    }

    [Fact]
    public void GgufLora_AlphaNotANumber_IsRejected()
    {
        var e = Rejected("gguf-lora", Gguf([("general.type", GgufValueType.String, StrValue("adapter")), ("adapter.type", GgufValueType.String, StrValue("lora")),
            ("general.architecture", GgufValueType.String, StrValue("llama")), ("adapter.lora.alpha", GgufValueType.String, StrValue("x"))], []));
        Assert.IsAssignableFrom<Core.UserErrorException>(e);
        Assert.Contains("adapter.lora.alpha", e.Message);
    }

    [Fact]
    public void TokenizerJson_InvalidUtf8_IsRejected()
    {
        // Was InvalidOperationException "Cannot transcode invalid UTF-8 JSON text to UTF-16 string".
        var e = Rejected("tokenizer-json", [.. U("{\"model\": {\"vocab\": {\""), 0xFF, .. U("\": 0}}}")]);
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void EncoderJson_LoneSurrogateEscape_IsRejected()
    {
        // Was InvalidOperationException "Cannot read incomplete UTF-16 JSON text as string with missing low surrogate".
        var e = Rejected("vocab-merges", FuzzWorkspace.Join(U("{\"a\\ud800\": 0, \"b\": 1}"), U("a b\n")));
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Fact]
    public void EncoderJson_HugeIdOfASmallVocabulary_IsRejectedWithoutAllocatingItsRange()
    {
        // Was an allocation finding: one id of 1,400,000 made the loader allocate an 11 MB piece table for a 5 KB file.
        var e = Rejected("vocab-merges", FuzzWorkspace.Join(U("{\"a\": 0, \"b\": 9999999}"), U("a b\n")));
        Assert.Contains("without large gaps", e.Message);
    }

    [Fact]
    public void ShardedIndex_RootNotAnObject_IsRejected()
    {
        // Was InvalidOperationException "requires an element of type 'Object'".
        var e = Rejected("safetensors-index", FuzzWorkspace.Join(U("42"), [], []));
        Assert.IsType<ModelFormatException>(e);
    }

    [Fact]
    public void ShardedIndex_InvalidUtf8_IsRejected()
    {
        var e = Rejected("safetensors-index", FuzzWorkspace.Join([.. U("{\"weight_map\": {\""), 0xC3, .. U("\": \"a.safetensors\"}}")], [], []));
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void Safetensors_LoneSurrogateInName_IsRejected()
    {
        string header = "{\"a\\udc00\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
        var e = Rejected("safetensors", [.. BitConverter.GetBytes((ulong)header.Length), .. U(header), 0, 0, 0, 0]);
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Fact]
    public void Safetensors_DataOffsetsNotNumbers_IsRejected()
    {
        // Was InvalidOperationException from JsonElement.TryGetInt64 on null (found through the peft-adapter target).
        string header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [null, 4]}}";
        var e = Rejected("safetensors", [.. BitConverter.GetBytes((ulong)header.Length), .. U(header), 0, 0, 0, 0]);
        Assert.Contains("data_offsets", e.Message);
    }

    [Fact]
    public void PeftConfig_LoneSurrogateInTargetModules_IsRejected()
    {
        // Was InvalidOperationException from JsonNode.GetValue<string> (found by the 1M run of peft-adapter).
        var e = Rejected("peft-config", U("{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": \"q_proj\\ud800\"}"));
        Assert.IsAssignableFrom<Core.UserErrorException>(e);
        Assert.Contains("$.target_modules", e.Message);
    }

    [Theory]
    [InlineData("a: ", "[", "]")]
    [InlineData("a: ", "{b: ", "}")]
    [InlineData("", "- ", "")]
    public void SettingsYaml_DeepNesting_IsRejectedBeforeYamlDotNetRecurses(string head, string open, string close)
    {
        // Was a stack overflow inside YamlDotNet's parser, which kills the process (found by reading after the
        // harness's note on uncatchable failures; 20,000 levels).
        var e = Rejected("settings-yaml", U(head + string.Concat(Enumerable.Repeat(open, 20_000)) + "x" + string.Concat(Enumerable.Repeat(close, 20_000)) + "\n"));
        Assert.IsAssignableFrom<Core.UserErrorException>(e);
        Assert.Contains("nesting deeper than", e.Message);
    }

    [Fact]
    public void SettingsYaml_ShippedStyleNesting_StillParses()
    {
        var t = Targets.Find("settings-yaml");
        using var ws = new FuzzWorkspace(t.Name);
        var finding = FuzzEngine.RunOne(t, U("lora_name: x\ntarget_modules:\n  - q_proj\n  - v_proj\nlearning_rate: 3e-4\n"), ws, out bool parsed, out _);
        Assert.Null(finding);
        Assert.True(parsed);
    }

    [Fact]
    public void PeftConfig_RootALoneSurrogateString_IsRejected()
    {
        // Was InvalidOperationException while the "not an object" error printed the root (found by the 1M peft-config run).
        var e = Rejected("peft-config", U("\"\\udc01\""));
        Assert.IsAssignableFrom<Core.UserErrorException>(e);
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Theory]
    [InlineData("settings-yaml", "lora_name: x\nmodules_to_save:\n")]
    [InlineData("settings-yaml", "rank_pattern: ~\n")]
    [InlineData("settings-json", "{\"modules_to_save\": null}")]
    public void Settings_NullForANonNullableSetting_IsRejected(string target, string text)
    {
        // Was NullReferenceException in LoraSettings.Validate (found by the final 1M settings-yaml run, on
        // target_modules, which is nullable since: null there is "not given", the family's PEFT default).
        var e = Rejected(target, U(text));
        Assert.IsAssignableFrom<Core.UserErrorException>(e);
    }

    [Theory]
    [InlineData("lora_name: x\ntarget_modules:\n")]
    [InlineData("{\"target_modules\": null}")]
    public void Settings_NullTargetModules_IsNotGiven(string text)
    {
        var settings = Training.TrainingSettingsFile.Load(WriteTemp(text.StartsWith('{') ? "s.json" : "s.yaml", text));
        Assert.Null(settings.TargetModules);
        settings.Validate();
        Assert.Equal(["q_proj", "v_proj"], settings.ToLoraSettings("llama").TargetModules);
    }

    [Fact]
    public void SettingsYaml_ExponentNumbers_AreNumbers()
    {
        // YamlDotNet reads "3e-4" as a float, which used to arrive as the string "0.0003" and fail to load.
        var settings = Training.TrainingSettingsFile.Load(WriteTemp("s.yaml", "learning_rate: 3e-4\nwarmup_ratio: 1.0e-1\nlora_rank: 8\n"));
        Assert.Equal(3e-4, settings.LearningRate, 1e-12);
        Assert.Equal(0.1, settings.WarmupRatio, 1e-7);
        Assert.Equal(8, settings.LoraRank);
    }

    [Fact]
    public void SettingsYaml_NaN_IsRejectedNamingTheFile()
    {
        // Was the BCL's ArgumentException ("cannot be written as valid JSON") without the file's name.
        string path = WriteTemp("nan.yaml", "learning_rate: .nan\n");
        var e = Assert.Throws<Core.UserErrorException>(() => Training.TrainingSettingsFile.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("learning_rate", e.Message);
    }

    private static string WriteTemp(string name, string text)
    {
        string dir = Path.Combine(Path.GetTempPath(), "lorasharp-fuzz-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void HfConfig_LoneSurrogateInModelType_IsRejected()
    {
        var e = Rejected("hf-config", U("{\"model_type\": \"llama\\ud800\", \"hidden_size\": 8}"));
        Assert.IsType<ModelFormatException>(e);
        Assert.Contains("model_type", e.Message);
    }

    [Fact]
    public void Dataset_InvalidUtf8_IsRejectedWithItsLine()
    {
        var e = Rejected("dataset-json", [.. U("{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \""), 0xFE, .. U("\", \"output\": \"b\"}\n")]);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void Dataset_DuplicateField_IsRejected()
    {
        // Was ArgumentException "An item with the same key has already been added. Key: output" from FormatFile.Render.
        var e = Rejected("dataset-json", U("[{\"instruction\": \"a\", \"output\": \"b\", \"output\": \"c\"}]"));
        Assert.Contains("\"output\" appears twice", e.Message);
    }

    [Fact]
    public void Dataset_LoneSurrogateInValue_IsRejected()
    {
        var e = Rejected("dataset-json", U("[{\"instruction\": \"a\\ud800\", \"output\": \"b\"}]"));
        Assert.Contains("$.instruction", e.Message);
    }

    [Fact]
    public void Dataset_OneSampleWithEvalSplit_IsRejected()
    {
        // Was ArgumentException from DatasetSplit. The dataset-json target derives its options from the input length:
        // a multiple of 3 asks for an eval share, and a multiple of 12 also keeps (truncates) over-long samples.
        string row = "[{\"instruction\": \"a\", \"output\": \"b\"}]";
        while (Encoding.UTF8.GetByteCount(row) % 12 != 0) row += " ";
        var e = Rejected("dataset-json", U(row));
        Assert.Contains("too few to hold out a validation share", e.Message);
    }

    [Fact]
    public void FormatFile_LoneSurrogateInTemplate_IsRejected()
    {
        var e = Rejected("format-file", U("{\"instruction,output\": \"%instruction%\\ud800%output%\"}"));
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Fact]
    public void WebTrain_InvalidUtf8InSettings_IsA400()
    {
        // Was InvalidOperationException from JsonElement.GetRawText on the settings object.
        var e = Rejected("web-train", [.. U("{\"model\": \"m\", \"settings\": {\"lora_name\": \""), 0xFF, .. U("\"}}")]);
        Assert.Equal("HttpError", e.GetType().Name);
        Assert.Contains("UTF-8", e.Message);
    }

    [Theory]
    [InlineData("web-export", "{\"adapter\": null, \"model\": \"m\"}")]
    [InlineData("web-merge", "{\"model\": \"m\", \"adapters\": [{\"name\": \"a\"}], \"out\": null}")]
    [InlineData("web-merge", "{\"model\": \"m\", \"adapters\": [null], \"out\": \"x\"}")]
    [InlineData("web-combine", "{\"adapters\": null, \"out\": \"c\"}")]
    public void WebBody_NullWhereAValueIsRequired_IsA400(string target, string body)
    {
        // Was NullReferenceException (a 500) for "adapter": null (found by the 1M web-export run) and its siblings.
        var e = Rejected(target, U(body));
        Assert.True(e.GetType().Name is "HttpError" || e is Core.UserErrorException, e.ToString());
    }

    [Fact]
    public void WebGenerate_NullStopString_IsIgnored()
    {
        var t = Targets.Find("web-generate");
        using var ws = new FuzzWorkspace(t.Name);
        Assert.Null(FuzzEngine.RunOne(t, U("{\"model\": \"m\", \"stop\": [null, \"x\"]}"), ws, out bool parsed, out _));
        Assert.True(parsed);
    }

    public static TheoryData<string> SavedFindings()
    {
        var data = new TheoryData<string>();
        string root = Path.Combine(AppContext.BaseDirectory, "FuzzRegressions");
        if (Directory.Exists(root))
            foreach (var f in Directory.GetFiles(root, "*.bin", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                data.Add(Path.GetRelativePath(root, f));
        return data;
    }

    [Theory]
    [MemberData(nameof(SavedFindings))]
    public void SavedFinding_ParsesOrIsRejectedCleanly(string relative)
    {
        string target = relative.Split(Path.DirectorySeparatorChar)[0];
        var t = Targets.Find(target);
        using var ws = new FuzzWorkspace(t.Name);
        var finding = FuzzEngine.RunOne(t, File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "FuzzRegressions", relative)), ws, out _, out _);
        Assert.True(finding == null, finding?.ToString());
    }
}
