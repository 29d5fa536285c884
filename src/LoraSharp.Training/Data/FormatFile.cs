// A text-generation-webui training format file (training/formats/*.json): one JSON object whose keys are
// comma-separated field sets and whose values are templates with %field% placeholders, e.g.
//   { "instruction,output": "### Instruction:\n%instruction%\n\n### Response:\n%output%",
//     "instruction,input,output": "...%instruction%...%input%...%output%" }
// A row is rendered by the template whose key set equals the set of the row's fields holding non-empty strings
// (other JSON types are ignored, as webui does). Differences from webui, on purpose: key names are trimmed
// ("a, b" is {a, b}); placeholders are replaced in one pass, so a value containing "%output%" stays literal;
// a template using a placeholder outside its own key set, or two keys naming the same set, is refused at load.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LoraSharp.Training.Data;

/// <summary>A loaded format file.</summary>
public sealed partial class FormatFile
{
    private FormatFile(string source, IReadOnlyList<FormatTemplate> templates)
    {
        Source = source;
        Templates = templates;
    }

    /// <summary>The file (or name) it was read from.</summary>
    public string Source { get; }

    /// <summary>The templates in file order.</summary>
    public IReadOnlyList<FormatTemplate> Templates { get; }

    [GeneratedRegex("%([A-Za-z_][A-Za-z0-9_\\-]*)%")]
    private static partial Regex Placeholder();

    /// <summary>Reads and checks a format file.</summary>
    public static FormatFile Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new DatasetException("the format file does not exist (shipped ones are in formats/: alpaca-format.json, alpaca-chatbot-format.json, ChatML-format.json, llama2-chat-format.json, vicuna-format.json).", path);
        return Parse(File.ReadAllText(path, Encoding.UTF8), path);
    }

    /// <summary>
    /// Loads a format by path, or by name from <paramref name="formatsFolder"/>: "alpaca" finds alpaca.json or
    /// alpaca-format.json (case-insensitive). An unknown name is an error listing the formats there.
    /// </summary>
    public static FormatFile Resolve(string nameOrPath, string? formatsFolder)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        if (File.Exists(nameOrPath)) return Load(nameOrPath);
        if (formatsFolder is not null && Directory.Exists(formatsFolder))
        {
            var files = Directory.GetFiles(formatsFolder, "*.json");
            string want = nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? nameOrPath[..^5] : nameOrPath;
            foreach (var f in files)
            {
                string n = Path.GetFileNameWithoutExtension(f);
                if (n.Equals(want, StringComparison.OrdinalIgnoreCase) || n.Equals(want + "-format", StringComparison.OrdinalIgnoreCase)) return Load(f);
            }
            var names = files.Select(f => Path.GetFileNameWithoutExtension(f)).Select(n => n.EndsWith("-format", StringComparison.OrdinalIgnoreCase) ? n[..^7] : n).Order(StringComparer.OrdinalIgnoreCase);
            throw new DatasetException($"no format named \"{nameOrPath}\" in {formatsFolder}; available: {string.Join(", ", names)}. Give a name from this list or a path to a format file.");
        }
        throw new DatasetException("the format file does not exist; give a path to a *-format.json file (shipped ones are in the repository's formats/ folder).", nameOrPath);
    }

    /// <summary>Parses format-file JSON; <paramref name="source"/> names it in errors.</summary>
    public static FormatFile Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.TrimStart('\uFEFF'), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new DatasetException($"invalid JSON in format file: {e.Message}", source, line: (int)(e.LineNumber ?? 0) + 1, inner: e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new DatasetException($"a format file is one JSON object mapping field sets to templates, e.g. {{\"instruction,output\": \"%instruction%\\n%output%\"}}; this one is {JsonRows.Kind(root.ValueKind)}.", source);
            if (Formats.Json.JsonStrings.FirstInvalid(root) is { } bad)
                throw new DatasetException($"{bad} is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair); fix or remove it.", source);
            var templates = new List<FormatTemplate>();
            foreach (var p in root.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new DatasetException($"the template of key \"{p.Name}\" is {JsonRows.Kind(p.Value.ValueKind)}; it must be a string with %field% placeholders.", source);
                var names = p.Name.Split(',').Select(s => s.Trim()).ToArray();
                if (names.Any(n => n.Length == 0))
                    throw new DatasetException($"key \"{p.Name}\" has an empty field name; write field names separated by commas, e.g. \"instruction,input,output\".", source);
                var set = new HashSet<string>(names, StringComparer.Ordinal);
                if (set.Count != names.Length)
                    throw new DatasetException($"key \"{p.Name}\" names a field twice.", source);
                var same = templates.FirstOrDefault(t => t.Fields.SetEquals(set));
                if (same is not null)
                    throw new DatasetException($"keys \"{same.Key}\" and \"{p.Name}\" name the same field set; keep one.", source);
                string template = p.Value.GetString()!;
                foreach (Match m in Placeholder().Matches(template))
                    if (!set.Contains(m.Groups[1].Value))
                        throw new DatasetException(
                            $"the template of key \"{p.Name}\" uses %{m.Groups[1].Value}%, which is not in its field set; add the field to the key or remove the placeholder.", source);
                templates.Add(new FormatTemplate(p.Name, set, template));
            }
            if (templates.Count == 0)
                throw new DatasetException("the format file has no templates; add at least one \"field,field\": \"template\" entry.", source);
            return new FormatFile(source, templates);
        }
    }

    /// <summary>The template for a row's non-empty string fields, or null when none has exactly that set.</summary>
    public FormatTemplate? Match(IEnumerable<string> fields)
    {
        var set = fields.ToHashSet(StringComparer.Ordinal);
        return Templates.FirstOrDefault(t => t.Fields.SetEquals(set));
    }

    /// <summary>Renders a dataset row; throws naming the row, its fields and the available key sets when no template fits.</summary>
    public string Render(DatasetRow row, string datasetPath)
    {
        var fields = JsonRows.StringFields(row.Value);
        var template = Match(fields.Select(f => f.Name)) ?? throw new DatasetException(
            $"no template of format {Path.GetFileName(Source)} fits this row: its non-empty text fields are [{string.Join(", ", fields.Select(f => f.Name))}] " +
            $"({JsonRows.Describe(row.Value)}), and the format has key sets {string.Join(", ", Templates.Select(t => "[" + t.Key + "]"))}. " +
            "Fill in the missing fields, remove extra ones, or add a template for this field set.",
            datasetPath, row.Number, row.Line);
        return Render(template, fields.ToDictionary(f => f.Name, f => f.Value, StringComparer.Ordinal));
    }

    /// <summary>Replaces every %field% of <paramref name="template"/> by its value, in one pass.</summary>
    public static string Render(FormatTemplate template, IReadOnlyDictionary<string, string> values) =>
        Placeholder().Replace(template.Template, m => values.TryGetValue(m.Groups[1].Value, out var v) ? v : "");

    /// <summary>The entries of training_prompt.json: template_type "dataset" and template_0.. in file order.</summary>
    public IReadOnlyDictionary<string, string> TrainingPrompt()
    {
        var d = new Dictionary<string, string> { ["template_type"] = "dataset" };
        for (int i = 0; i < Templates.Count; i++) d[$"template_{i + 1}"] = Templates[i].Template;
        return d;
    }
}
