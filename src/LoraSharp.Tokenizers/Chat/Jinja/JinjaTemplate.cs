// A Jinja template as Hugging Face chat templates use it: parse once, render many times. The interpreter covers
// what real chat templates need: text with whitespace control (trim_blocks and lstrip_blocks on, as transformers
// sets them), {{ }} output, if/elif/else, for (loop.*, else, inline if filter, tuple unpacking), set (namespace()
// attributes, tuples, blocks), macros and call blocks, break/continue, filters, tests, Python string and dict
// methods, slicing, raise_exception, strftime_now and {% generation %} blocks. Autoescaping is off (as in
// transformers). Not supported: template inheritance and includes, recursive loops, printf-style %-formatting.
// Variables are plain .NET values: null, bool, integers, floating point, string, JsonElement, lists (IEnumerable)
// and dictionaries (IDictionary with string keys); they are converted once per render.
using System.Collections;
using System.Text.Json;

namespace LoraSharp.Tokenizers.Chat.Jinja;

/// <summary>A parsed Jinja template.</summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> _body;
    private readonly int[] _lineStarts;

    private JinjaTemplate(string source, List<Node> body, int[] lineStarts)
    {
        Source = source;
        _body = body;
        _lineStarts = lineStarts;
        HasGenerationBlocks = ContainsGeneration(body);
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Whether the template marks assistant output with {% generation %} blocks.</summary>
    public bool HasGenerationBlocks { get; }

    /// <summary>Parses a template; throws <see cref="JinjaException"/> with the line and column of a syntax error.</summary>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var body = JinjaParser.Parse(source, out var lines);
        return new JinjaTemplate(source, body, lines);
    }

    /// <summary>Renders the template with the given variables.</summary>
    public string Render(IReadOnlyDictionary<string, object?> variables, JinjaRenderOptions? options = null) =>
        RenderTracked(ConvertVariables(variables), null, options ?? new JinjaRenderOptions()).Text;

    internal JinjaRendering RenderTracked(Dictionary<string, object?> variables, Dictionary<object, int>? messageIds, JinjaRenderOptions options) =>
        new JinjaEvaluator(_lineStarts, options, messageIds).Run(_body, variables);

    internal static Dictionary<string, object?> ConvertVariables(IReadOnlyDictionary<string, object?> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in variables) d[k] = Convert(v);
        return d;
    }

    /// <summary>A .NET value as the interpreter's value.</summary>
    internal static object? Convert(object? v, int depth = 0)
    {
        if (depth > 100) throw new ArgumentException("a template variable is nested more than 100 levels deep");
        switch (v)
        {
            case null: return null;
            case string or bool or long or double or TStr or Namespace or Undefined: return v;
            case int i: return (long)i;
            case short s: return (long)s;
            case byte b: return (long)b;
            case uint ui: return (long)ui;
            case float f: return (double)f;
            case decimal m: return (double)m;
            case JsonElement je: return FromJson(je, depth);
            case IDictionary dict:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (DictionaryEntry e in dict) r[e.Key.ToString()!] = Convert(e.Value, depth + 1);
                return r;
            }
            case IEnumerable<KeyValuePair<string, object?>> kvs:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, val) in kvs) r[k] = Convert(val, depth + 1);
                return r;
            }
            case IEnumerable seq:
            {
                var r = new List<object?>();
                foreach (var x in seq) r.Add(Convert(x, depth + 1));
                return r;
            }
            default: throw new ArgumentException($"a template variable of type {v.GetType().Name} is not supported (use strings, numbers, booleans, lists, dictionaries or JSON)");
        }
    }

    internal static object? FromJson(JsonElement e, int depth = 0)
    {
        if (depth > 100) throw new ArgumentException("JSON nested more than 100 levels deep");
        switch (e.ValueKind)
        {
            case JsonValueKind.Null: case JsonValueKind.Undefined: return null;
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Number: return e.TryGetInt64(out long l) ? l : e.GetDouble();
            case JsonValueKind.Array: return e.EnumerateArray().Select(x => FromJson(x, depth + 1)).ToList();
            default:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject()) d[p.Name] = FromJson(p.Value, depth + 1);
                return d;
            }
        }
    }

    private static bool ContainsGeneration(List<Node> nodes)
    {
        foreach (var n in nodes)
        {
            switch (n)
            {
                case GenerationNode: return true;
                case IfNode i when i.Branches.Any(b => ContainsGeneration(b.Body)) || (i.Else != null && ContainsGeneration(i.Else)): return true;
                case ForNode f when ContainsGeneration(f.Body) || (f.Else != null && ContainsGeneration(f.Else)): return true;
                case MacroNode m when ContainsGeneration(m.Body): return true;
                case CallBlockNode c when ContainsGeneration(c.Body): return true;
                case SetBlockNode s when ContainsGeneration(s.Body): return true;
            }
        }
        return false;
    }
}
