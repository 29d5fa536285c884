// Reading and writing adapter_config.json. The spec is PEFT's own writer (PeftConfigMixin.save_pretrained):
//   json.dumps(asdict(config), indent=2, sort_keys=True)
// i.e. one JSON object, keys sorted, two-space indent, "key": value, Python value types: ints for r and lora_alpha,
// floats written the Python way (0.0, 0.05, 1e-05), null for None, {} / [] for empty containers. Like the golden
// file (../shared/golden/stories260K/lora/adapter_config.json), the text ends with a newline. Non-ASCII
// characters are written as UTF-8 (Python escapes them as \uXXXX; both read the same). Reading accepts any key
// order, unknown keys (kept), and Python-int/float differences; a wrong JSON type is an error naming the key and
// the file. Writing goes to a temporary file in the same folder, then replaces the target by rename.
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraSharp.Formats.Peft;

public sealed partial record PeftAdapterConfig
{
    /// <summary>The file name PEFT uses.</summary>
    public const string FileName = "adapter_config.json";

    // Keys PEFT (since ~0.10) always writes that this record does not model, with their default values.
    private static readonly (string Key, string Json)[] s_defaultExtras =
    [
        ("auto_mapping", "null"), ("layer_replication", "null"), ("loftq_config", "{}"),
        ("megatron_config", "null"), ("megatron_core", "\"megatron.core\""),
    ];

    /// <summary>Reads <paramref name="path"/> (a file, or a folder holding adapter_config.json).</summary>
    /// <exception cref="ModelFormatException">The file is not valid JSON or a key has the wrong type; the message names both.</exception>
    public static PeftAdapterConfig Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"PEFT adapter config '{path}' does not exist.", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses adapter_config.json text; <paramref name="source"/> names the file in error messages.</summary>
    public static PeftAdapterConfig Parse(string json, string source = FileName)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(source, null,
                $"not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message}", e);
        }
        // Strings are checked when read ("\ud800" parses): find a bad one before anything reads or prints it.
        using (var check = JsonDocument.Parse(json))
            if (Json.JsonStrings.FirstInvalid(check.RootElement) is { } bad)
                throw new ModelFormatException(source, bad, "is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair).");
        if (root is not JsonObject obj)
            throw new ModelFormatException(source, null, $"expected a JSON object of PEFT config keys, found {Kind(root)}.");
        using (var doc = JsonDocument.Parse(json))
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
                if (!seen.Add(property.Name))
                    throw new ModelFormatException(source, null, $"key '{property.Name}' appears more than once; keep one of them.");
        }

        var r = new Reader(source);
        var config = new PeftAdapterConfig();
        var extras = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (key, value) in obj)
        {
            switch (key)
            {
                case "peft_type": config = config with { PeftType = r.String(key, value, nullable: false)! }; break;
                case "r": config = config with { R = r.Int(key, value) }; break;
                case "lora_alpha": config = config with { LoraAlpha = r.Number(key, value) }; break;
                case "lora_dropout": config = config with { LoraDropout = r.Number(key, value) }; break;
                case "target_modules": config = config with { TargetModules = r.StringOrList(key, value) }; break;
                case "bias": config = config with { Bias = r.String(key, value, nullable: false)! }; break;
                case "task_type": config = config with { TaskType = r.String(key, value, nullable: true) }; break;
                case "base_model_name_or_path": config = config with { BaseModelNameOrPath = r.String(key, value, nullable: true) }; break;
                case "use_rslora": config = config with { UseRslora = r.Bool(key, value) }; break;
                case "use_dora": config = config with { UseDora = r.Bool(key, value) }; break;
                case "fan_in_fan_out": config = config with { FanInFanOut = r.Bool(key, value) }; break;
                case "inference_mode": config = config with { InferenceMode = r.Bool(key, value) }; break;
                case "init_lora_weights": config = config with { InitLoraWeights = r.Init(key, value) }; break;
                case "rank_pattern": config = config with { RankPattern = r.Map(key, value, v => r.Int(key, v)) }; break;
                case "alpha_pattern": config = config with { AlphaPattern = r.Map(key, value, v => r.Number(key, v)) }; break;
                case "layers_to_transform": config = config with { LayersToTransform = r.IntOrList(key, value) }; break;
                case "layers_pattern": config = config with { LayersPattern = r.StringOrList(key, value) }; break;
                case "modules_to_save": config = config with { ModulesToSave = r.StringList(key, value) }; break;
                case "revision": config = config with { Revision = r.String(key, value, nullable: true) }; break;
                default:
                    // A default-valued PEFT bookkeeping key is not worth keeping: the writer restores it.
                    bool isDefault = s_defaultExtras.Any(d => d.Key == key && JsonNode.DeepEquals(value, JsonNode.Parse(d.Json)));
                    if (!isDefault) extras[key] = value?.DeepClone();
                    break;
            }
        }
        return config with { ExtraFields = extras };
    }

    /// <summary>
    /// Writes the config to <paramref name="path"/> (a file path, or a folder to write adapter_config.json into)
    /// atomically: a temporary file in the same folder, flushed, then renamed over the target.
    /// </summary>
    public void Write(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Cannot write '{full}': folder '{dir}' does not exist.");
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                byte[] bytes = Encoding.UTF8.GetBytes(ToJson());
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            Durable.SyncDirectory(dir);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The JSON text exactly as PEFT writes it (sorted keys, two-space indent, trailing newline).</summary>
    public string ToJson()
    {
        Validate();
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w => WriteMap(w, AlphaPattern, (w2, v) => WriteNumber(w2, v, asFloat: false)),
            ["base_model_name_or_path"] = w => WriteString(w, BaseModelNameOrPath),
            ["bias"] = w => w.WriteStringValue(Bias),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(FanInFanOut),
            ["inference_mode"] = w => w.WriteBooleanValue(InferenceMode),
            ["init_lora_weights"] = w =>
            {
                if (InitLoraWeights.Method is { } m) w.WriteStringValue(m);
                else w.WriteBooleanValue(InitLoraWeights.Flag ?? true);
            },
            ["layers_pattern"] = w => WriteStringOrList(w, LayersPattern),
            ["layers_to_transform"] = w =>
            {
                if (LayersToTransform is null) { w.WriteNullValue(); return; }
                w.WriteStartArray();
                foreach (int i in LayersToTransform) w.WriteNumberValue(i);
                w.WriteEndArray();
            },
            ["lora_alpha"] = w => WriteNumber(w, LoraAlpha, asFloat: false),
            ["lora_dropout"] = w => WriteNumber(w, LoraDropout, asFloat: true),
            ["modules_to_save"] = w => WriteStringOrList(w, ModulesToSave is null ? null : PeftStringOrList.FromList(ModulesToSave)),
            ["peft_type"] = w => w.WriteStringValue(PeftType),
            ["r"] = w => w.WriteNumberValue(R),
            ["rank_pattern"] = w => WriteMap(w, RankPattern, (w2, v) => w2.WriteNumberValue(v)),
            ["revision"] = w => WriteString(w, Revision),
            ["target_modules"] = w => WriteStringOrList(w, TargetModules),
            ["task_type"] = w => WriteString(w, TaskType),
            ["use_dora"] = w => w.WriteBooleanValue(UseDora),
            ["use_rslora"] = w => w.WriteBooleanValue(UseRslora),
        };
        foreach (var (key, json) in s_defaultExtras)
            if (!ExtraFields.ContainsKey(key)) fields[key] = w => w.WriteRawValue(json);
        foreach (var (key, node) in ExtraFields)
        {
            if (fields.ContainsKey(key) && !s_defaultExtras.Any(d => d.Key == key))
                throw new InvalidOperationException($"ExtraFields has '{key}', which is a modelled key; set the property instead.");
            fields[key] = w => { if (node is null) w.WriteNullValue(); else node.WriteTo(w); };
        }

        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions
        {
            Indented = true,
            IndentSize = 2,
            NewLine = "\n",
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            writer.WriteStartObject();
            foreach (var (key, write) in fields)
            {
                writer.WritePropertyName(key);
                write(writer);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    private void Validate()
    {
        if (R <= 0) throw new InvalidOperationException($"PEFT config: r = {R}; the LoRA rank must be > 0.");
        if (!double.IsFinite(LoraAlpha)) throw new InvalidOperationException($"PEFT config: lora_alpha = {LoraAlpha} is not finite.");
        if (!(LoraDropout >= 0 && LoraDropout < 1)) throw new InvalidOperationException($"PEFT config: lora_dropout = {LoraDropout} must be in [0, 1).");
        if (PeftType is null || Bias is null) throw new InvalidOperationException("PEFT config: peft_type and bias must not be null.");
    }

    private static void WriteString(Utf8JsonWriter w, string? s)
    {
        if (s is null) w.WriteNullValue();
        else w.WriteStringValue(s);
    }

    private static void WriteStringOrList(Utf8JsonWriter w, PeftStringOrList? v)
    {
        if (v is null) { w.WriteNullValue(); return; }
        if (v.Items is null) { w.WriteStringValue(v.Text); return; }
        w.WriteStartArray();
        foreach (string s in v.Items) w.WriteStringValue(s);
        w.WriteEndArray();
    }

    private static void WriteMap<T>(Utf8JsonWriter w, IReadOnlyDictionary<string, T> map, Action<Utf8JsonWriter, T> value)
    {
        w.WriteStartObject();
        foreach (var key in map.Keys.Order(StringComparer.Ordinal))
        {
            w.WritePropertyName(key);
            value(w, map[key]);
        }
        w.WriteEndObject();
    }

    // Whole numbers as Python ints (lora_alpha = 8), unless the field is a Python float (lora_dropout = 0.0).
    private static void WriteNumber(Utf8JsonWriter w, double v, bool asFloat)
    {
        if (!asFloat && v == Math.Floor(v) && Math.Abs(v) < 1e15) w.WriteRawValue(((long)v).ToString(CultureInfo.InvariantCulture));
        else w.WriteRawValue(PythonFloat(v));
    }

    /// <summary>
    /// A double as Python's repr writes it: the shortest round-trip digits, fixed notation for decimal exponents
    /// -4..15 with at least one fractional digit (2.0, 0.0001), otherwise d.ddde±XX (1e-05, 1e+16).
    /// </summary>
    internal static string PythonFloat(double v)
    {
        if (!double.IsFinite(v)) throw new InvalidOperationException($"PEFT config: {v} cannot be written to JSON.");
        if (v == 0) return double.IsNegative(v) ? "-0.0" : "0.0";
        string r = v.ToString("R", CultureInfo.InvariantCulture);
        string sign = r[0] == '-' ? "-" : "";
        if (sign.Length > 0) r = r[1..];
        int e = r.IndexOfAny(['E', 'e']);
        string mantissa = e >= 0 ? r[..e] : r;
        int exponent = e >= 0 ? int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture) : 0;
        int dot = mantissa.IndexOf('.');
        string intPart = dot >= 0 ? mantissa[..dot] : mantissa;
        string digits = intPart + (dot >= 0 ? mantissa[(dot + 1)..] : "");
        int lead = digits.Length - digits.TrimStart('0').Length;
        digits = digits.TrimStart('0').TrimEnd('0');
        int point = intPart.Length + exponent - lead;   // value = 0.digits × 10^point
        int x = point - 1;                               // value = d.ddd × 10^x
        if (x < -4 || x >= 16)
            return sign + digits[0] + (digits.Length > 1 ? "." + digits[1..] : "") + "e" + (x < 0 ? "-" : "+")
                   + Math.Abs(x).ToString("00", CultureInfo.InvariantCulture);
        if (point <= 0) return sign + "0." + new string('0', -point) + digits;
        if (point >= digits.Length) return sign + digits + new string('0', point - digits.Length) + ".0";
        return sign + digits[..point] + "." + digits[point..];
    }

    private static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => $"the string {v.ToJsonString()}",
            JsonValueKind.Number => $"the number {v.ToJsonString()}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {v.ToJsonString()}",
            _ => v.ToJsonString(),
        },
        _ => node.ToJsonString(),
    };

    /// <summary>Typed access to JSON values with errors that name the key and the file.</summary>
    private sealed class Reader(string source)
    {
        private ModelFormatException Wrong(string key, string expected, JsonNode? found)
            => new(source, null, $"key '{key}' must be {expected}, but it is {Kind(found)}. Fix the value in the file (PEFT writes {expected}).");

        public string? String(string key, JsonNode? v, bool nullable)
        {
            if (v is null && nullable) return null;
            if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.String) return jv.GetValue<string>();
            throw Wrong(key, nullable ? "a string or null" : "a string", v);
        }

        public bool Bool(string key, JsonNode? v)
        {
            if (v is JsonValue jv && jv.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return jv.GetValue<bool>();
            throw Wrong(key, "true or false", v);
        }

        public double Number(string key, JsonNode? v)
        {
            if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number) return jv.GetValue<double>();
            throw Wrong(key, "a number", v);
        }

        public int Int(string key, JsonNode? v)
        {
            if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number)
            {
                double d = jv.GetValue<double>();
                if (d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
            }
            throw Wrong(key, "an integer", v);
        }

        public PeftStringOrList? StringOrList(string key, JsonNode? v) => v switch
        {
            null => null,
            JsonArray a => PeftStringOrList.FromList(a.Select(e => String(key, e, nullable: false)!)),
            _ => PeftStringOrList.FromString(String(key, v, nullable: false)!),
        };

        public IReadOnlyList<string>? StringList(string key, JsonNode? v)
        {
            if (v is null) return null;
            if (v is JsonArray a) return a.Select(e => String(key, e, nullable: false)!).ToArray();
            throw Wrong(key, "a list of strings or null", v);
        }

        public IReadOnlyList<int>? IntOrList(string key, JsonNode? v) => v switch
        {
            null => null,
            JsonArray a => a.Select(e => Int(key, e)).ToArray(),
            _ => [Int(key, v)],
        };

        public PeftInitLoraWeights Init(string key, JsonNode? v)
        {
            if (v is JsonValue jv)
            {
                if (jv.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return jv.GetValue<bool>();
                if (jv.GetValueKind() == JsonValueKind.String) return jv.GetValue<string>();
            }
            throw Wrong(key, "true, false or a method name string", v);
        }

        public IReadOnlyDictionary<string, T> Map<T>(string key, JsonNode? v, Func<JsonNode?, T> value)
        {
            if (v is null) return new Dictionary<string, T>();
            if (v is not JsonObject o) throw Wrong(key, "an object", v);
            var d = new Dictionary<string, T>(StringComparer.Ordinal);
            foreach (var (k, e) in o) d[k] = value(e);
            return d;
        }
    }
}
