// Reads and writes TrainingSettings as JSON (training_parameters.json, --config x.json) or YAML (--config x.yaml),
// with the same snake_case names in both. Unknown keys are an error naming the key, so typos do not pass silently.
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.Core;
using YamlDotNet.Serialization;

namespace LoraSharp.Training;

/// <summary>Training settings files.</summary>
public static class TrainingSettingsFile
{
    /// <summary>The file every finished adapter folder holds.</summary>
    public const string ParametersFileName = "training_parameters.json";

    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        // Settings made in code may hold NaN or infinity: written as "NaN"/"Infinity" so that Validate can name them
        // (a settings file or body never gets that far: the schema's checks refuse non-finite numbers first).
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    // Reading also refuses null for a non-nullable setting ("modules_to_save:" with no value in YAML, or
    // "rank_pattern": null, reached LoraSettings.Validate as a NullReferenceException; found by fuzzing). Nullable ones
    // (lora_alpha, target_modules, warmup_steps, ...) read null as "not given".
    private static readonly JsonSerializerOptions ReadOptions = new(Options) { RespectNullableAnnotations = true };

    /// <summary>Settings as JSON text.</summary>
    public static string ToJson(TrainingSettings settings) => JsonSerializer.Serialize(settings, Options);

    /// <summary>Loads a .json or .yaml/.yml settings file, or an adapter folder's training_parameters.json.</summary>
    public static TrainingSettings Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, ParametersFileName);
        if (!File.Exists(path)) throw new UserErrorException($"Settings file '{path}' does not exist; give a .json or .yaml file, or an adapter folder with {ParametersFileName}.");
        string text = File.ReadAllText(path);
        string json = path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            ? YamlToJson(text, path)
            : text;
        return Parse(json, path);
    }

    /// <summary>Settings from JSON text with training_parameters.json keys; <paramref name="source"/> names it in errors.</summary>
    public static TrainingSettings Parse(string json, string source)
    {
        JsonNode? node;
        var documentOptions = new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
        try
        {
            // A lone surrogate escape ("\ud800") parses but fails whoever reads the string (found by the web-train fuzz target).
            using (var doc = JsonDocument.Parse(json, documentOptions))
                if (Formats.Json.JsonStrings.FirstInvalid(doc.RootElement) is { } bad)
                    throw new UserErrorException($"{source}: {bad} is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair).");
            node = JsonNode.Parse(json, documentOptions: documentOptions);
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{source}: not valid JSON: {e.Message}", e);
        }
        // JsonObject builds its dictionary on first use; a key given twice fails there (found by the settings fuzz target).
        try { _ = node is JsonObject o ? o.Count : 0; }
        catch (ArgumentException e) { throw new UserErrorException($"{source}: a setting is given twice ({e.Message.Replace(" (Parameter 'key')", "")}); keep one.", e); }
        if (node is not JsonObject obj) throw new UserErrorException($"{source}: expected an object of settings ({{\"lora_rank\": 8, ...}}), not {node?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}.");
        return Parse(obj, source);
    }

    /// <summary>Settings from a JSON object with training_parameters.json keys (the one parser of every settings path).</summary>
    public static TrainingSettings Parse(JsonObject json, string source)
    {
        Settings.TrainingSettingsSchema.CheckJson(json, source);
        try
        {
            return json.Deserialize<TrainingSettings>(ReadOptions) ?? throw new UserErrorException($"{source} is empty.");
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{source}: {e.Message} Valid keys are the snake_case names in {ParametersFileName} (see docs/training.md).", e);
        }
    }

    /// <summary>
    /// <paramref name="settings"/> with the keys of <paramref name="changes"/> replaced (command-line options over a
    /// settings file), through the same checks as a file.
    /// </summary>
    public static TrainingSettings Apply(TrainingSettings settings, JsonObject changes, string source)
    {
        var merged = (JsonObject)JsonNode.Parse(ToJson(settings))!;
        foreach (var (key, value) in changes) merged[key] = value?.DeepClone();
        Settings.TrainingSettingsSchema.CheckJson(changes, source);
        return Parse(merged, source);
    }

    /// <summary>
    /// The top-level object of a .json or .yaml/.yml file, read with the same YAML rules as a settings file (for files
    /// that hold settings among other keys, such as a sweep config); the keys are not checked here.
    /// </summary>
    public static JsonObject ReadObject(string path)
    {
        if (!File.Exists(path)) throw new UserErrorException($"File '{path}' does not exist.");
        string text = File.ReadAllText(path);
        string json = path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            ? YamlToJson(text, path)
            : text;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            _ = node is JsonObject o ? o.Count : 0;
        }
        catch (JsonException e) { throw new UserErrorException($"{path}: not valid JSON: {e.Message}", e); }
        catch (ArgumentException e) { throw new UserErrorException($"{path}: a key is given twice ({e.Message.Replace(" (Parameter 'key')", "")}); keep one.", e); }
        return node as JsonObject ?? throw new UserErrorException($"{path}: expected an object of keys, not {node?.GetValueKind().ToString().ToLowerInvariant() ?? "nothing"}.");
    }

    /// <summary>Deepest nesting a YAML settings file may have (the settings need 3 levels).</summary>
    public const int MaxYamlDepth = 64;

    private static string YamlToJson(string yaml, string path)
    {
        // YamlDotNet parses nesting by recursion, and a stack overflow kills the process uncatchably ("a: [[[[...",
        // found by fuzzing), so refuse deep files before parsing.
        if (YamlDepth(yaml) is var (depth, line) && depth > MaxYamlDepth)
            throw new UserErrorException($"{path}: line {line}: nesting deeper than {MaxYamlDepth} levels; a settings file is a flat list of keys (lists and maps one level down).");
        object? data;
        try
        {
            data = new DeserializerBuilder().WithAttemptingUnquotedStringTypeDeserialization().Build().Deserialize<object?>(yaml);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new UserErrorException($"{path}: line {e.Start.Line}: {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet's parser throws these for some malformed streams ("The scanner should contain no more
            // tokens"; "Global tags must be valid URIs" for a bad %TAG directive; both found by fuzzing) instead of a
            // YamlException.
            throw new UserErrorException($"{path}: not valid YAML ({e.Message}).", e);
        }
        return ToNode(data)?.ToJsonString() ?? "{}";
    }

    // An upper bound of the nesting depth: block indentation levels, "- " entries opening on one line, and flow
    // brackets outside quotes; with the line where the deepest point is.
    private static (int Depth, int Line) YamlDepth(string yaml)
    {
        var indents = new Stack<int>();
        int flow = 0, max = 0, maxLine = 1, lineNo = 0;
        foreach (var raw in yaml.Split('\n'))
        {
            lineNo++;
            string line = raw.TrimEnd('\r');
            int indent = 0;
            while (indent < line.Length && line[indent] == ' ') indent++;
            if (flow == 0 && indent < line.Length && line[indent] != '#')
            {
                while (indents.Count > 0 && indents.Peek() > indent) indents.Pop();
                if (indents.Count == 0 || indents.Peek() < indent) indents.Push(indent);
            }
            int dashes = 0;
            for (int i = indent; i + 1 < line.Length && line[i] == '-' && line[i + 1] == ' '; i += 2) dashes++;
            char quote = '\0';
            foreach (char c in line)
            {
                if (quote != '\0') { if (c == quote) quote = '\0'; continue; }
                if (c is '"' or '\'') quote = c;
                else if (c == '#') break;
                else if (c is '[' or '{') flow++;
                else if (c is ']' or '}') flow = Math.Max(0, flow - 1);
                if (indents.Count + dashes + flow > max) { max = indents.Count + dashes + flow; maxLine = lineNo; }
            }
            if (indents.Count + dashes > max) { max = indents.Count + dashes; maxLine = lineNo; }
        }
        return (max, maxLine);
    }

    private static JsonNode? ToNode(object? o) => o switch
    {
        null => null,
        IDictionary<object, object> map => new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key.ToString()!, ToNode(kv.Value)))),
        IList<object> list => new JsonArray(list.Select(ToNode).ToArray()),
        string s when s is "true" or "false" => JsonValue.Create(s == "true"),
        string s when long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long l) => JsonValue.Create(l),
        string s when double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) => JsonValue.Create(d),   // "NaN", "Infinity" stay text
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        // .nan / .inf cannot be JSON numbers: as strings they fail the typed read with the file's name.
        double d when !double.IsFinite(d) => JsonValue.Create(d.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        float f when !float.IsFinite(f) => JsonValue.Create(f.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        double d => JsonValue.Create(d),
        // YamlDotNet types unquoted scalars with the smallest fitting type ("3e-4" is a float, "8" may be a byte):
        // keep them numbers, or "learning_rate: 3e-4" would arrive as the string "0.0003".
        float f => JsonValue.Create(double.Parse(f.ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture)),
        byte or sbyte or short or ushort or uint => JsonValue.Create(Convert.ToInt64(o, System.Globalization.CultureInfo.InvariantCulture)),
        ulong u => JsonValue.Create(u),
        decimal m => JsonValue.Create(m),
        _ => JsonValue.Create(o.ToString()),
    };
}
