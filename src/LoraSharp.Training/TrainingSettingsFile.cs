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
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

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
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{source}: not valid JSON: {e.Message}", e);
        }
        if (node is not JsonObject obj) throw new UserErrorException($"{source}: expected an object of settings ({{\"lora_rank\": 8, ...}}), not {node?.GetValueKind().ToString().ToLowerInvariant() ?? "null"}.");
        return Parse(obj, source);
    }

    /// <summary>Settings from a JSON object with training_parameters.json keys (the one parser of every settings path).</summary>
    public static TrainingSettings Parse(JsonObject json, string source)
    {
        Settings.TrainingSettingsSchema.CheckJson(json, source);
        try
        {
            return json.Deserialize<TrainingSettings>(Options) ?? throw new UserErrorException($"{source} is empty.");
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

    private static string YamlToJson(string yaml, string path)
    {
        object? data;
        try
        {
            data = new DeserializerBuilder().WithAttemptingUnquotedStringTypeDeserialization().Build().Deserialize<object?>(yaml);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new UserErrorException($"{path}: line {e.Start.Line}: {e.Message}", e);
        }
        return ToNode(data)?.ToJsonString() ?? "{}";
    }

    private static JsonNode? ToNode(object? o) => o switch
    {
        null => null,
        IDictionary<object, object> map => new JsonObject(map.Select(kv => KeyValuePair.Create(kv.Key.ToString()!, ToNode(kv.Value)))),
        IList<object> list => new JsonArray(list.Select(ToNode).ToArray()),
        string s when s is "true" or "false" => JsonValue.Create(s == "true"),
        string s when long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long l) => JsonValue.Create(l),
        string s when double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double d) => JsonValue.Create(d),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        // YamlDotNet's unquoted-scalar typing picks the smallest fitting type (byte, ushort, float, ...)
        byte or sbyte or short or ushort or int or uint or long => JsonValue.Create(Convert.ToInt64(o, System.Globalization.CultureInfo.InvariantCulture)),
        ulong or float or double or decimal => JsonValue.Create(Convert.ToDouble(o, System.Globalization.CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(o.ToString()),
    };
}
