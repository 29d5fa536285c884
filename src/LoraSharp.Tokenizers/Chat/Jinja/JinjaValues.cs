// Values of the interpreter, Python-like as Jinja sees them: null is None; bool, long, double; string, or a TStr
// (a string whose characters remember which message they came from, so chat rendering can find the assistant's
// text in the output); List<object?> for lists and tuples; Dictionary<string, object?> for mappings (insertion
// order kept, as JSON and Python dicts); Undefined; Namespace; Macro; and callables (globals and bound methods).
// Text conversion follows Python's str()/repr() and json.dumps (what transformers' tojson calls).
using System.Globalization;
using System.Text;

namespace LoraSharp.Tokenizers.Chat.Jinja;

/// <summary>An undefined value (a missing variable, key or attribute), as Jinja's default Undefined.</summary>
internal sealed class Undefined(string hint)
{
    public string Hint { get; } = hint;
}

/// <summary>A string whose characters carry an origin (a message number, 0 for none).</summary>
internal sealed class TStr
{
    public readonly string Text;
    public readonly int[] Origin; // one per char

    public TStr(string text, int[] origin)
    {
        Text = text;
        Origin = origin;
    }

    public override string ToString() => Text;

    /// <summary>A string, a TStr when any character has an origin.</summary>
    public static object Make(string text, int[]? origin)
    {
        if (origin == null) return text;
        foreach (int o in origin) if (o != 0) return new TStr(text, origin);
        return text;
    }

    public static int[]? OriginOf(object? v) => v is TStr t ? t.Origin : null;

    public static object Sub(object s, int start, int length)
    {
        if (s is TStr t) return Make(t.Text.Substring(start, length), t.Origin.AsSpan(start, length).ToArray());
        return ((string)s).Substring(start, length);
    }

    public static object Concat(IReadOnlyList<object> parts)
    {
        bool tagged = false;
        foreach (var p in parts) if (p is TStr) { tagged = true; break; }
        if (!tagged) return string.Concat(parts.Select(p => (string)p));
        var sb = new StringBuilder();
        var origin = new List<int>();
        foreach (var p in parts)
        {
            if (p is TStr t) { sb.Append(t.Text); origin.AddRange(t.Origin); }
            else { var s = (string)p; sb.Append(s); for (int i = 0; i < s.Length; i++) origin.Add(0); }
        }
        return Make(sb.ToString(), [.. origin]);
    }
}

/// <summary>namespace(...): the one mutable object a template may assign attributes on.</summary>
internal sealed class Namespace
{
    public readonly Dictionary<string, object?> Attrs = new(StringComparer.Ordinal);
}

/// <summary>A {% macro %}: parameters with defaults and a body, called like a function.</summary>
internal sealed class Macro(MacroNode node)
{
    public MacroNode Node { get; } = node;
}

/// <summary>A built-in function or a bound method.</summary>
internal sealed class Callable(string name, Func<List<object?>, Dictionary<string, object?>, object?> fn)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => fn(args, kwargs);
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopInfo
{
    public int Index0;
    public int Length;
    public object? Prev, Next;
    public bool HasPrev, HasNext;
}

internal static class Py
{
    public static bool IsStr(object? v) => v is string or TStr;
    public static string Str(object? v) => v is TStr t ? t.Text : (string)v!;

    public static bool Truthy(object? v) => v switch
    {
        null => false,
        Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        TStr t => t.Text.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string or TStr => "str",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        Namespace => "Namespace",
        Macro => "Macro",
        Callable => "function",
        LoopInfo => "LoopContext",
        _ => v.GetType().Name,
    };

    /// <summary>Python str().</summary>
    public static string ToStr(object? v) => v switch
    {
        string s => s,
        TStr t => t.Text,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python repr().</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        Repr(v, sb, 0);
        return sb.ToString();
    }

    private static void Repr(object? v, StringBuilder sb, int depth)
    {
        if (depth > 100) throw new InvalidOperationException("value nested too deeply");
        switch (v)
        {
            case null: sb.Append("None"); break;
            case Undefined: break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case string or TStr: StrRepr(Str(v), sb); break;
            case List<object?> list:
                sb.Append('[');
                for (int i = 0; i < list.Count; i++) { if (i > 0) sb.Append(", "); Repr(list[i], sb, depth + 1); }
                sb.Append(']');
                break;
            case Dictionary<string, object?> dict:
                sb.Append('{');
                bool first = true;
                foreach (var (k, val) in dict)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    StrRepr(k, sb);
                    sb.Append(": ");
                    Repr(val, sb, depth + 1);
                }
                sb.Append('}');
                break;
            case Namespace: sb.Append("<Namespace>"); break;
            case Macro m: sb.Append("<Macro '").Append(m.Node.Name).Append("'>"); break;
            case Callable c: sb.Append("<function ").Append(c.Name).Append('>'); break;
            default: sb.Append(v); break;
        }
    }

    private static void StrRepr(string s, StringBuilder sb)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(q);
        foreach (var ch in s)
        {
            if (ch == q || ch == '\\') sb.Append('\\').Append(ch);
            else if (ch == '\n') sb.Append("\\n");
            else if (ch == '\r') sb.Append("\\r");
            else if (ch == '\t') sb.Append("\\t");
            else if (ch < 0x20 || ch == 0x7f) sb.Append("\\x").Append(((int)ch).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append(ch);
        }
        sb.Append(q);
    }

    /// <summary>Python's repr of a float: shortest round-trip digits, ".0" on integral values, exponent past 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        if (r.Contains('E'))
        {
            // .NET: 1E-05 / 1E+16; Python: 1e-05 / 1e+16
            int e = r.IndexOf('E');
            string mant = r[..e], exp = r[(e + 1)..];
            int ev = int.Parse(exp, CultureInfo.InvariantCulture);
            if (ev >= -4 && ev < 16)
                return double.Parse(r, CultureInfo.InvariantCulture).ToString("0.0###################", CultureInfo.InvariantCulture);
            return mant + "e" + (ev < 0 ? "-" : "+") + Math.Abs(ev).ToString("00", CultureInfo.InvariantCulture);
        }
        if (Math.Abs(d) >= 1e16)
        {
            string m = r.TrimStart('-');
            int digits = m.Length - 1;
            string mant = m[0] + (m.Length > 1 ? "." + m[1..].TrimEnd('0') : "");
            if (mant.EndsWith('.')) mant = mant[..^1];
            return (d < 0 ? "-" : "") + mant + "e+" + digits.ToString("00", CultureInfo.InvariantCulture);
        }
        return r.Contains('.') ? r : r + ".0";
    }

    /// <summary>json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson filter calls it.</summary>
    public static string Json(object? v, int? indent, bool ensureAscii, string itemSep, string keySep, bool sortKeys)
    {
        var sb = new StringBuilder();
        Json(v, sb, indent, ensureAscii, itemSep, keySep, sortKeys, 0);
        return sb.ToString();
    }

    private static void Json(object? v, StringBuilder sb, int? indent, bool ascii, string itemSep, string keySep, bool sort, int level)
    {
        if (level > 100) throw new InvalidOperationException("value nested too deeply for tojson");
        switch (v)
        {
            case null: sb.Append("null"); break;
            case Undefined: throw new InvalidOperationException("Object of type Undefined is not JSON serializable");
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : FloatRepr(d));
                break;
            case string or TStr: JsonString(Str(v), sb, ascii); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    Newline(sb, indent, level + 1);
                    Json(list[i], sb, indent, ascii, itemSep, keySep, sort, level + 1);
                }
                Newline(sb, indent, level);
                sb.Append(']');
                break;
            case Dictionary<string, object?> dict:
                if (dict.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                IEnumerable<KeyValuePair<string, object?>> items = sort ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal) : dict;
                bool first = true;
                foreach (var (k, val) in items)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    Newline(sb, indent, level + 1);
                    JsonString(k, sb, ascii);
                    sb.Append(keySep);
                    Json(val, sb, indent, ascii, itemSep, keySep, sort, level + 1);
                }
                Newline(sb, indent, level);
                sb.Append('}');
                break;
            case Namespace ns: Json(ns.Attrs, sb, indent, ascii, itemSep, keySep, sort, level); break;
            default: throw new InvalidOperationException($"Object of type {TypeName(v)} is not JSON serializable");
        }
    }

    private static void Newline(StringBuilder sb, int? indent, int level)
    {
        if (indent is not { } n) return;
        sb.Append('\n').Append(' ', n * level);
    }

    private static void JsonString(string s, StringBuilder sb, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Python ==, deep for lists and dicts; ints and floats compare by value.</summary>
    public static bool Eq(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a == null || b == null) return a == null && b == null;
        if (IsStr(a) && IsStr(b)) return Str(a) == Str(b);
        if (a is bool ba && b is bool bb) return ba == bb;
        if (IsNum(a) && IsNum(b)) return a is long la && b is long lb ? la == lb : ToDouble(a) == ToDouble(b);
        if (a is List<object?> la2 && b is List<object?> lb2)
        {
            if (la2.Count != lb2.Count) return false;
            for (int i = 0; i < la2.Count; i++) if (!Eq(la2[i], lb2[i])) return false;
            return true;
        }
        if (a is Dictionary<string, object?> da && b is Dictionary<string, object?> db)
        {
            if (da.Count != db.Count) return false;
            foreach (var (k, v) in da) if (!db.TryGetValue(k, out var w) || !Eq(v, w)) return false;
            return true;
        }
        return ReferenceEquals(a, b);
    }

    // bool is an int in Python (True + 1 == 2).
    public static bool IsNum(object? v) => v is long or double or bool;
    public static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => 0 };
    public static long ToLong(object? v) => v switch { long l => l, bool b => b ? 1 : 0, double d => (long)d, _ => 0 };
}
