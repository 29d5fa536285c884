// The built-ins of the evaluator: attribute and item access (Jinja's getattr/getitem order), slicing, Python
// string/dict/list methods, filters, tests and globals (range, namespace, dict, raise_exception, strftime_now).
// String operations that only cut or join (strip, split, slicing, replace, join, trim, ~ and +) keep the origin
// tags of TStr characters; others return plain strings. Mutating methods (append, update, pop, ...) are refused
// as Jinja's ImmutableSandboxedEnvironment refuses them.
using System.Globalization;
using System.Text;

namespace LoraSharp.Tokenizers.Chat.Jinja;

internal sealed partial class JinjaEvaluator
{
    private static readonly HashSet<string> s_unsafe = ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem", "__class__", "__init__", "__globals__", "mro", "__subclasses__"];

    private Dictionary<string, object?> Globals() => new(StringComparer.Ordinal)
    {
        ["range"] = new Callable("range", (a, _) => Range(a)),
        ["namespace"] = new Callable("namespace", (a, kw) =>
        {
            var ns = new Namespace();
            foreach (var x in a)
                if (x is Dictionary<string, object?> d) foreach (var (k, v) in d) ns.Attrs[k] = v;
                else throw new ArgumentException("namespace() takes keyword arguments or a dict");
            foreach (var (k, v) in kw) ns.Attrs[k] = v;
            return ns;
        }),
        ["dict"] = new Callable("dict", (a, kw) =>
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var x in a) if (x is Dictionary<string, object?> src) foreach (var (k, v) in src) d[k] = v;
            foreach (var (k, v) in kw) d[k] = v;
            return d;
        }),
        ["raise_exception"] = new Callable("raise_exception", (a, _) =>
            throw new JinjaException(a.Count > 0 ? Py.ToStr(a[0]) : "raise_exception() called", 0, 0, raised: true)),
        ["strftime_now"] = new Callable("strftime_now", (a, _) =>
            Strftime(_options.Now ?? DateTime.Now, a.Count > 0 && Py.IsStr(a[0]) ? Py.Str(a[0]) : throw new ArgumentException("strftime_now needs a format string"))),
    };

    private List<object?> Range(List<object?> a)
    {
        if (a.Count is 0 or > 3 || a.Any(x => x is not (long or bool))) throw new ArgumentException("range() takes 1 to 3 integers");
        long start = 0, stop, step = 1;
        if (a.Count == 1) stop = Py.ToLong(a[0]);
        else { start = Py.ToLong(a[0]); stop = Py.ToLong(a[1]); if (a.Count == 3) step = Py.ToLong(a[2]); }
        if (step == 0) throw new ArgumentException("range() step must not be zero");
        long count = step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
        if (count > _options.MaxRange) throw new ArgumentException($"range() of {count} items exceeds the limit of {_options.MaxRange}");
        var r = new List<object?>((int)count);
        for (long i = 0, v = start; i < count; i++, v += step) r.Add(v);
        return r;
    }

    // ---- attribute / item access

    private object? GetAttr(object? obj, string name, int pos)
    {
        switch (obj)
        {
            case Undefined u: throw Fail(u.Hint, pos);
            case Dictionary<string, object?> d:
                if (name is "items" or "keys" or "values" or "get") return DictMethod(d, name);
                if (s_unsafe.Contains(name)) return Refused("dict", name);
                return d.TryGetValue(name, out var v) ? v : new Undefined($"'dict object' has no attribute '{name}'");
            case Namespace ns:
                return ns.Attrs.TryGetValue(name, out var nv) ? nv : new Undefined($"'Namespace' has no attribute '{name}'");
            case LoopInfo l:
                return name switch
                {
                    "index" => (long)(l.Index0 + 1),
                    "index0" => (long)l.Index0,
                    "revindex" => (long)(l.Length - l.Index0),
                    "revindex0" => (long)(l.Length - l.Index0 - 1),
                    "first" => l.Index0 == 0,
                    "last" => l.Index0 == l.Length - 1,
                    "length" => (long)l.Length,
                    "depth" => 1L,
                    "depth0" => 0L,
                    "previtem" => l.HasPrev ? l.Prev : new Undefined("there is no previous item"),
                    "nextitem" => l.HasNext ? l.Next : new Undefined("there is no next item"),
                    "cycle" => new Callable("loop.cycle", (a, _) => a.Count == 0 ? throw new ArgumentException("no items to cycle") : a[l.Index0 % a.Count]),
                    _ => new Undefined($"'LoopContext' has no attribute '{name}'"),
                };
            case string or TStr:
                return (object?)StringMethod(obj, name) ?? new Undefined($"'str object' has no attribute '{name}'");
            case List<object?> list:
                if (s_unsafe.Contains(name)) return Refused("list", name);
                if (name == "index") return new Callable("list.index", (a, _) => { int i = list.FindIndex(x => Py.Eq(x, a.ElementAtOrDefault(0))); return i < 0 ? throw new ArgumentException("value is not in list") : (long)i; });
                if (name == "count") return new Callable("list.count", (a, _) => (long)list.Count(x => Py.Eq(x, a.ElementAtOrDefault(0))));
                return new Undefined($"'list object' has no attribute '{name}'");
            default:
                return new Undefined($"'{Py.TypeName(obj)} object' has no attribute '{name}'");
        }
    }

    private static Callable Refused(string type, string name) =>
        new($"{type}.{name}", (_, _) => throw new InvalidOperationException($"access to attribute '{name}' of '{type}' object is unsafe (templates may not modify values)"));

    private object? GetItem(object? obj, object? key, int pos)
    {
        switch (obj)
        {
            case Undefined u: throw Fail(u.Hint, pos);
            case Dictionary<string, object?> d:
                if (Py.IsStr(key))
                {
                    if (d.TryGetValue(Py.Str(key), out var v)) return v;
                    return GetAttr(obj, Py.Str(key), pos) is { } a && a is not Undefined ? a : new Undefined($"'dict object' has no attribute '{Py.Str(key)}'");
                }
                return new Undefined($"'dict object' has no attribute {Py.Repr(key)}");
            case List<object?> l when key is long or bool:
            {
                long i = Py.ToLong(key);
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : new Undefined($"list index {Py.ToLong(key)} out of range");
            }
            case string or TStr when key is long or bool:
            {
                int n = Py.Str(obj).Length;
                long i = Py.ToLong(key);
                if (i < 0) i += n;
                return i >= 0 && i < n ? TStr.Sub(obj, (int)i, 1) : new Undefined($"string index {Py.ToLong(key)} out of range");
            }
            case Namespace or LoopInfo when Py.IsStr(key):
                return GetAttr(obj, Py.Str(key), pos);
            case null:
                return new Undefined($"'None' has no attribute {Py.Repr(key)}");
            default:
                if (Py.IsStr(key)) return GetAttr(obj, Py.Str(key), pos);
                return new Undefined($"'{Py.TypeName(obj)} object' has no item {Py.Repr(key)}");
        }
    }

    private object? Slice(object? obj, object? start, object? stop, object? step, int pos)
    {
        if (obj is Undefined u) throw Fail(u.Hint, pos);
        int n = obj switch
        {
            List<object?> l => l.Count,
            string or TStr => Py.Str(obj).Length,
            _ => throw Fail($"'{Py.TypeName(obj)}' object is not subscriptable", pos),
        };
        long st = step is null ? 1 : step is long or bool ? Py.ToLong(step) : throw Fail("slice indices must be integers or None", pos);
        if (st == 0) throw Fail("slice step cannot be zero", pos);
        long Norm(object? v, long dflt, bool isStop)
        {
            if (v is null) return dflt;
            if (v is not (long or bool)) throw Fail("slice indices must be integers or None", pos);
            long x = Py.ToLong(v);
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Norm(start, st > 0 ? 0 : n - 1, false), b = Norm(stop, st > 0 ? n : -1, true);
        var idx = new List<int>();
        if (st > 0) for (long i = a; i < b; i += st) idx.Add((int)i);
        else for (long i = a; i > b; i += st) idx.Add((int)i);
        if (obj is List<object?> list) return idx.Select(i => list[i]).ToList();
        if (st == 1) return idx.Count == 0 ? "" : TStr.Sub(obj!, idx[0], idx.Count);
        return TStr.Concat(idx.Select(i => TStr.Sub(obj!, i, 1)).ToList());
    }

    private Callable DictMethod(Dictionary<string, object?> d, string name) => name switch
    {
        "items" => new Callable("dict.items", (_, _) => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()),
        "keys" => new Callable("dict.keys", (_, _) => d.Keys.Cast<object?>().ToList()),
        "values" => new Callable("dict.values", (_, _) => d.Values.ToList()),
        _ => new Callable("dict.get", (a, _) =>
            a.Count > 0 && Py.IsStr(a[0]) && d.TryGetValue(Py.Str(a[0]), out var v) ? v : a.Count > 1 ? a[1] : null),
    };

    // ---- strings

    private static bool IsPyWhite(char c) => char.IsWhiteSpace(c) || c is '\x1c' or '\x1d' or '\x1e' or '\x1f';

    internal static object Strip(object s, string? chars, bool left, bool right)
    {
        string t = Py.Str(s);
        int a = 0, b = t.Length;
        Func<char, bool> drop = chars == null ? IsPyWhite : c => chars.Contains(c);
        if (left) while (a < b && drop(t[a])) a++;
        if (right) while (b > a && drop(t[b - 1])) b--;
        return TStr.Sub(s, a, b - a);
    }

    private static List<object?> Split(object s, string? sep, long maxsplit)
    {
        string t = Py.Str(s);
        var r = new List<object?>();
        if (sep == null)
        {
            int i = 0, splits = 0;
            while (true)
            {
                while (i < t.Length && IsPyWhite(t[i])) i++;
                if (i >= t.Length) break;
                if (maxsplit >= 0 && splits >= maxsplit)
                {
                    int e = t.Length;
                    while (e > i && IsPyWhite(t[e - 1])) e--;
                    r.Add(TStr.Sub(s, i, e - i));
                    break;
                }
                int j = i;
                while (j < t.Length && !IsPyWhite(t[j])) j++;
                r.Add(TStr.Sub(s, i, j - i));
                splits++;
                i = j;
            }
            return r;
        }
        if (sep.Length == 0) throw new ArgumentException("empty separator");
        int start = 0, count = 0;
        while (maxsplit < 0 || count < maxsplit)
        {
            int k = t.IndexOf(sep, start, StringComparison.Ordinal);
            if (k < 0) break;
            r.Add(TStr.Sub(s, start, k - start));
            start = k + sep.Length;
            count++;
        }
        r.Add(TStr.Sub(s, start, t.Length - start));
        return r;
    }

    internal static object Replace(object s, string old, string @new, long count)
    {
        string t = Py.Str(s);
        var parts = new List<object>();
        int start = 0, done = 0;
        if (old.Length == 0)
        {
            // Python inserts @new between every character (and at both ends).
            for (int i = 0; i <= t.Length && (count < 0 || done < count); i++)
            {
                parts.Add(@new);
                done++;
                if (i < t.Length) parts.Add(TStr.Sub(s, i, 1));
                start = i + 1;
            }
            if (start <= t.Length) parts.Add(TStr.Sub(s, Math.Min(start, t.Length), t.Length - Math.Min(start, t.Length)));
            return TStr.Concat(parts);
        }
        while (count < 0 || done < count)
        {
            int k = t.IndexOf(old, start, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(TStr.Sub(s, start, k - start));
            parts.Add(@new);
            start = k + old.Length;
            done++;
        }
        parts.Add(TStr.Sub(s, start, t.Length - start));
        return TStr.Concat(parts);
    }

    private static string? OptStr(List<object?> a, int i) => i < a.Count && a[i] != null ? (Py.IsStr(a[i]) ? Py.Str(a[i]) : throw new ArgumentException("expected a string argument")) : null;

    private static bool Affix(string t, object? arg, bool prefix)
    {
        if (arg is List<object?> l) return l.Any(x => Affix(t, x, prefix));
        if (!Py.IsStr(arg)) throw new ArgumentException($"{(prefix ? "startswith" : "endswith")} needs a string or a tuple of strings");
        return prefix ? t.StartsWith(Py.Str(arg), StringComparison.Ordinal) : t.EndsWith(Py.Str(arg), StringComparison.Ordinal);
    }

    private Callable? StringMethod(object s, string name)
    {
        string t = Py.Str(s);
        Callable M(Func<List<object?>, Dictionary<string, object?>, object?> f) => new("str." + name, f);
        return name switch
        {
            "strip" => M((a, _) => Strip(s, OptStr(a, 0), true, true)),
            "lstrip" => M((a, _) => Strip(s, OptStr(a, 0), true, false)),
            "rstrip" => M((a, _) => Strip(s, OptStr(a, 0), false, true)),
            "split" => M((a, kw) => Split(s, OptStr(a, 0) ?? (kw.TryGetValue("sep", out var sp) && sp != null ? Py.Str(sp) : null),
                a.Count > 1 ? Py.ToLong(a[1]) : kw.TryGetValue("maxsplit", out var ms) ? Py.ToLong(ms) : -1)),
            "rsplit" => M((a, _) =>
            {
                var sep = OptStr(a, 0);
                long max = a.Count > 1 ? Py.ToLong(a[1]) : -1;
                if (max < 0 || sep == null) return Split(s, sep, max);
                var parts = new List<object?>();
                int end = t.Length;
                for (long k = 0; k < max; k++)
                {
                    int p = end == 0 ? -1 : t.LastIndexOf(sep, end - 1, StringComparison.Ordinal);
                    if (p < 0 || p + sep.Length > end) break;
                    parts.Insert(0, TStr.Sub(s, p + sep.Length, end - p - sep.Length));
                    end = p;
                }
                parts.Insert(0, TStr.Sub(s, 0, end));
                return parts;
            }),
            "startswith" => M((a, _) => Affix(t, a.ElementAtOrDefault(0), true)),
            "endswith" => M((a, _) => Affix(t, a.ElementAtOrDefault(0), false)),
            "upper" => M((_, _) => SameLength(s, t.ToUpperInvariant())),
            "lower" => M((_, _) => SameLength(s, t.ToLowerInvariant())),
            "title" => M((_, _) => SameLength(s, Title(t))),
            "capitalize" => M((_, _) => SameLength(s, Capitalize(t))),
            "replace" => M((a, _) => Replace(s, OptStr(a, 0) ?? "", OptStr(a, 1) ?? "", a.Count > 2 ? Py.ToLong(a[2]) : -1)),
            "find" => M((a, _) => (long)t.IndexOf(OptStr(a, 0) ?? "", StringComparison.Ordinal)),
            "rfind" => M((a, _) => (long)t.LastIndexOf(OptStr(a, 0) ?? "", StringComparison.Ordinal)),
            "count" => M((a, _) => { var sub = OptStr(a, 0) ?? ""; if (sub.Length == 0) return (long)t.Length + 1; long c = 0; int i = 0; while ((i = t.IndexOf(sub, i, StringComparison.Ordinal)) >= 0) { c++; i += sub.Length; } return c; }),
            "join" => M((a, _) => JoinItems(s, Iterate(a.ElementAtOrDefault(0), 0))),
            "splitlines" => M((_, _) => t.Split('\n').Select(x => (object?)x.TrimEnd('\r')).Take(t.EndsWith('\n') ? t.Split('\n').Length - 1 : int.MaxValue).ToList()),
            "isdigit" => M((_, _) => t.Length > 0 && t.All(char.IsDigit)),
            "isalpha" => M((_, _) => t.Length > 0 && t.All(char.IsLetter)),
            "isalnum" => M((_, _) => t.Length > 0 && t.All(char.IsLetterOrDigit)),
            "isspace" => M((_, _) => t.Length > 0 && t.All(IsPyWhite)),
            "islower" => M((_, _) => t.Any(char.IsLetter) && !t.Any(char.IsUpper)),
            "isupper" => M((_, _) => t.Any(char.IsLetter) && !t.Any(char.IsLower)),
            _ => null,
        };
    }

    private static object SameLength(object s, string mapped) =>
        s is TStr ts && mapped.Length == ts.Text.Length ? TStr.Make(mapped, ts.Origin) : mapped;

    private static string Title(string t)
    {
        var sb = new StringBuilder(t.Length);
        bool prevCased = false;
        foreach (char c in t)
        {
            sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevCased = char.IsLetter(c);
        }
        return sb.ToString();
    }

    private static string Capitalize(string t) => t.Length == 0 ? t : char.ToUpperInvariant(t[0]) + t[1..].ToLowerInvariant();

    private object JoinItems(object sep, List<object?> items)
    {
        var parts = new List<object>();
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) parts.Add(sep);
            parts.Add(StrTagged(items[i]));
        }
        CheckSize(parts.Sum(p => (long)Py.Str(p).Length), 0);
        return TStr.Concat(parts);
    }

    // ---- filters

    private object? ApplyFilter(string name, object? v, List<object?> a, Dictionary<string, object?> kw, int pos)
    {
        object? Arg(int i, string key, object? dflt) => i < a.Count ? a[i] : kw.TryGetValue(key, out var x) ? x : dflt;
        try
        {
            switch (name)
            {
                case "trim":
                    return Strip(StrTagged(v), Arg(0, "chars", null) is { } ch ? Py.ToStr(ch) : null, true, true);
                case "length": case "count":
                    return v switch
                    {
                        Undefined => 0L,
                        string or TStr => (long)Py.Str(v).Length,
                        List<object?> l => (long)l.Count,
                        Dictionary<string, object?> d => (long)d.Count,
                        Namespace ns => (long)ns.Attrs.Count,
                        _ => throw Fail($"object of type '{Py.TypeName(v)}' has no len()", pos),
                    };
                case "tojson":
                {
                    var ind = Arg(0, "indent", null);
                    var seps = Arg(2, "separators", null) as List<object?>;
                    int? indent = ind is null ? null : (int)Py.ToLong(ind);
                    string item = seps is { Count: 2 } ? Py.ToStr(seps[0]) : indent is null ? ", " : ",";
                    string key = seps is { Count: 2 } ? Py.ToStr(seps[1]) : ": ";
                    return Py.Json(v, indent, Py.Truthy(Arg(1, "ensure_ascii", false)), item, key, Py.Truthy(Arg(3, "sort_keys", false)));
                }
                case "upper": return SameLength(StrTagged(v), Py.ToStr(v).ToUpperInvariant());
                case "lower": return SameLength(StrTagged(v), Py.ToStr(v).ToLowerInvariant());
                case "capitalize": return SameLength(StrTagged(v), Capitalize(Py.ToStr(v)));
                case "title": return SameLength(StrTagged(v), Title(Py.ToStr(v)));
                case "default": case "d":
                {
                    bool boolean = Py.Truthy(Arg(1, "boolean", false));
                    return v is Undefined || (boolean && !Py.Truthy(v)) ? Arg(0, "default_value", "") : v;
                }
                case "items":
                    if (v is Undefined) return new List<object?>();
                    if (v is not Dictionary<string, object?> dd) throw Fail($"items filter needs a mapping, not {Py.TypeName(v)}", pos);
                    return dd.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();
                case "join":
                {
                    var items = Iterate(v, pos);
                    if (Arg(1, "attribute", null) is { } attr) items = items.Select(x => Attribute(x, Py.ToStr(attr), pos)).ToList();
                    return JoinItems(StrTagged(Arg(0, "d", "")), items);
                }
                case "replace":
                    return Replace(StrTagged(v), Py.ToStr(Arg(0, "old", "")), Py.ToStr(Arg(1, "new", "")), Arg(2, "count", null) is { } c ? Py.ToLong(c) : -1);
                case "first":
                {
                    if (v is List<object?> l) return l.Count > 0 ? l[0] : new Undefined("first of an empty sequence");
                    var items = Iterate(v, pos);
                    return items.Count > 0 ? items[0] : new Undefined("first of an empty sequence");
                }
                case "last":
                {
                    var items = Iterate(v, pos);
                    return items.Count > 0 ? items[^1] : new Undefined("last of an empty sequence");
                }
                case "string": return StrTagged(v);
                case "list": return Iterate(v, pos);
                case "safe": return v;
                case "escape": case "e": case "forceescape":
                    return Py.ToStr(v).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");
                case "selectattr": case "rejectattr":
                {
                    bool keep = name == "selectattr";
                    string attr = Py.ToStr(Arg(0, "attribute", ""));
                    string? test = a.Count > 1 ? Py.ToStr(a[1]) : null;
                    var targs = a.Skip(2).ToList();
                    return Iterate(v, pos).Where(x =>
                    {
                        var av = Attribute(x, attr, pos);
                        bool r = test == null ? Py.Truthy(av) : ApplyTest(test, av, targs, pos);
                        return r == keep;
                    }).ToList();
                }
                case "select": case "reject":
                {
                    bool keep = name == "select";
                    string? test = a.Count > 0 ? Py.ToStr(a[0]) : null;
                    var targs = a.Skip(1).ToList();
                    return Iterate(v, pos).Where(x => (test == null ? Py.Truthy(x) : ApplyTest(test, x, targs, pos)) == keep).ToList();
                }
                case "map":
                {
                    var items = Iterate(v, pos);
                    if (kw.TryGetValue("attribute", out var at))
                    {
                        bool hasDefault = kw.TryGetValue("default", out var dv);
                        return items.Select(x => { var r = Attribute(x, Py.ToStr(at), pos); return r is Undefined && hasDefault ? dv : r; }).ToList();
                    }
                    if (a.Count == 0) throw Fail("map needs a filter name or attribute=", pos);
                    string f = Py.ToStr(a[0]);
                    var fargs = a.Skip(1).ToList();
                    return items.Select(x => ApplyFilter(f, x, fargs, [], pos)).ToList();
                }
                case "reverse":
                    if (Py.IsStr(v)) return new string(Py.Str(v).Reverse().ToArray());
                    { var l = Iterate(v, pos); l.Reverse(); return l; }
                case "unique":
                {
                    var r = new List<object?>();
                    foreach (var x in Iterate(v, pos)) if (!r.Any(y => Py.Eq(x, y))) r.Add(x);
                    return r;
                }
                case "sort":
                {
                    bool rev = Py.Truthy(Arg(0, "reverse", false));
                    bool cs = Py.Truthy(Arg(1, "case_sensitive", false));
                    var attr = Arg(2, "attribute", null);
                    var l = Iterate(v, pos);
                    object? Key(object? x) { var k = attr == null ? x : Attribute(x, Py.ToStr(attr), pos); return !cs && Py.IsStr(k) ? Py.Str(k).ToLowerInvariant() : k; }
                    var sorted = l.Select(x => (K: Key(x), V: x)).ToList();
                    sorted.Sort((p, q) => Order(p.K, q.K, pos));
                    if (rev) sorted.Reverse();
                    return sorted.Select(p => p.V).ToList();
                }
                case "dictsort":
                    if (v is not Dictionary<string, object?> ds) throw Fail("dictsort needs a mapping", pos);
                    return ds.OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();
                case "int":
                    if (v is long) return v;
                    if (v is double dbl) return (long)Math.Truncate(dbl);
                    if (v is bool bo) return bo ? 1L : 0L;
                    if (Py.IsStr(v) && long.TryParse(Py.Str(v).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long li)) return li;
                    if (Py.IsStr(v) && double.TryParse(Py.Str(v).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double ld)) return (long)Math.Truncate(ld);
                    return Arg(0, "default", 0L);
                case "float":
                    if (Py.IsNum(v)) return Py.ToDouble(v);
                    if (Py.IsStr(v) && double.TryParse(Py.Str(v).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double fd)) return fd;
                    return Arg(0, "default", 0.0);
                case "abs":
                    return v switch { long l => Math.Abs(l), double d => Math.Abs(d), bool b => b ? 1L : 0L, _ => throw Fail($"bad operand type for abs(): '{Py.TypeName(v)}'", pos) };
                case "round":
                {
                    int prec = (int)Py.ToLong(Arg(0, "precision", 0L));
                    string method = Py.ToStr(Arg(1, "method", "common"));
                    double d = Py.ToDouble(v), m = Math.Pow(10, prec);
                    return method switch { "ceil" => Math.Ceiling(d * m) / m, "floor" => Math.Floor(d * m) / m, _ => Math.Round(d * m, MidpointRounding.AwayFromZero) / m };
                }
                case "sum":
                {
                    var attr = Arg(0, "attribute", null);
                    object? acc = Arg(1, "start", 0L);
                    foreach (var x in Iterate(v, pos)) acc = Binary("+", acc, attr == null ? x : Attribute(x, Py.ToStr(attr), pos), pos);
                    return acc;
                }
                case "min": case "max":
                {
                    var l = Iterate(v, pos);
                    if (l.Count == 0) return new Undefined($"{name} of an empty sequence");
                    var best = l[0];
                    foreach (var x in l.Skip(1)) { int cmp = Order(x, best, pos); if (name == "min" ? cmp < 0 : cmp > 0) best = x; }
                    return best;
                }
                case "indent":
                {
                    var w = Arg(0, "width", 4L);
                    string ind = Py.IsStr(w) ? Py.Str(w) : new string(' ', (int)Py.ToLong(w));
                    bool first = Py.Truthy(Arg(1, "first", false)), blank = Py.Truthy(Arg(2, "blank", false));
                    var lines = Py.ToStr(v).Split('\n');
                    for (int i = 0; i < lines.Length; i++)
                        if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = ind + lines[i];
                    return string.Join("\n", lines);
                }
                case "wordcount": return (long)Py.ToStr(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
                case "attr": return GetAttr(v, Py.ToStr(Arg(0, "name", "")), pos);
                case "batch":
                {
                    long size = Py.ToLong(Arg(0, "linecount", 1L));
                    if (size <= 0) throw Fail("batch size must be positive", pos);
                    return Iterate(v, pos).Chunk((int)size).Select(c => (object?)c.ToList()).ToList();
                }
                case "format":
                    throw Fail("the format filter (printf-style) is not supported; use ~ to build strings", pos);
                default:
                    throw Fail($"unknown filter '{name}'", pos);
            }
        }
        catch (InvalidOperationException ex) { throw Fail($"filter {name}: {ex.Message}", pos); }
        catch (ArgumentException ex) { throw Fail($"filter {name}: {ex.Message}", pos); }
    }

    // Dotted attribute path ("function.name") as selectattr/map/sort use it.
    private object? Attribute(object? x, string path, int pos)
    {
        foreach (var part in path.Split('.'))
        {
            if (x is Undefined) return x;
            x = long.TryParse(part, out long i) ? GetItem(x, i, pos) : GetItem(x, part, pos);
        }
        return x;
    }

    private int Order(object? a, object? b, int pos)
    {
        if (Py.IsNum(a) && Py.IsNum(b)) return Py.ToDouble(a).CompareTo(Py.ToDouble(b));
        if (Py.IsStr(a) && Py.IsStr(b)) return string.CompareOrdinal(Py.Str(a), Py.Str(b));
        throw Fail($"'<' not supported between instances of '{Py.TypeName(a)}' and '{Py.TypeName(b)}'", pos);
    }

    // ---- tests

    private bool ApplyTest(string name, object? v, List<object?> a, int pos)
    {
        object? A0() => a.Count > 0 ? a[0] : throw Fail($"test '{name}' needs an argument", pos);
        switch (name)
        {
            case "defined": return v is not Undefined;
            case "undefined": return v is Undefined;
            case "none": return v == null;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "integer": return v is long;
            case "float": return v is double;
            case "number": return v is long or double;
            case "string": return Py.IsStr(v);
            case "mapping": return v is Dictionary<string, object?>;
            case "iterable": return v is string or TStr or List<object?> or Dictionary<string, object?> or Undefined;
            case "sequence": return v is string or TStr or List<object?> or Dictionary<string, object?>;
            case "callable": return v is Callable or Macro;
            case "sameas": return ReferenceEquals(v, A0()) || (v == null && A0() == null) || (v is bool x && A0() is bool y && x == y);
            case "equalto": case "eq": case "==": return Py.Eq(v, A0());
            case "ne": case "!=": return !Py.Eq(v, A0());
            case "lt": case "lessthan": case "<": return Compare("<", v, A0(), pos);
            case "gt": case "greaterthan": case ">": return Compare(">", v, A0(), pos);
            case "le": case "<=": return Compare("<=", v, A0(), pos);
            case "ge": case ">=": return Compare(">=", v, A0(), pos);
            case "in": return Contains(A0(), v, pos);
            case "odd": return v is long lo && lo % 2 != 0;
            case "even": return v is long le && le % 2 == 0;
            case "divisibleby": { long d = Py.ToLong(A0()); return d != 0 && Py.ToLong(v) % d == 0; }
            case "lower": return Py.IsStr(v) && Py.Str(v) == Py.Str(v).ToLowerInvariant();
            case "upper": return Py.IsStr(v) && Py.Str(v) == Py.Str(v).ToUpperInvariant();
            case "escaped": return false;
            default: throw Fail($"unknown test '{name}'", pos);
        }
    }

    // ---- strftime (C locale, as Python's on the machines transformers runs on)

    private static readonly string[] s_days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly string[] s_months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    internal static string Strftime(DateTime t, string fmt)
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            switch (c)
            {
                case 'd': sb.Append(t.Day.ToString("00", ci)); break;
                case 'e': sb.Append(t.Day.ToString(ci).PadLeft(2)); break;
                case 'm': sb.Append(t.Month.ToString("00", ci)); break;
                case 'Y': sb.Append(t.Year.ToString("0000", ci)); break;
                case 'y': sb.Append((t.Year % 100).ToString("00", ci)); break;
                case 'b': case 'h': sb.Append(s_months[t.Month - 1][..3]); break;
                case 'B': sb.Append(s_months[t.Month - 1]); break;
                case 'a': sb.Append(s_days[(int)t.DayOfWeek][..3]); break;
                case 'A': sb.Append(s_days[(int)t.DayOfWeek]); break;
                case 'H': sb.Append(t.Hour.ToString("00", ci)); break;
                case 'I': sb.Append(((t.Hour + 11) % 12 + 1).ToString("00", ci)); break;
                case 'p': sb.Append(t.Hour < 12 ? "AM" : "PM"); break;
                case 'M': sb.Append(t.Minute.ToString("00", ci)); break;
                case 'S': sb.Append(t.Second.ToString("00", ci)); break;
                case 'j': sb.Append(t.DayOfYear.ToString("000", ci)); break;
                case 'w': sb.Append(((int)t.DayOfWeek).ToString(ci)); break;
                case 'F': sb.Append(t.ToString("yyyy-MM-dd", ci)); break;
                case 'T': sb.Append(t.ToString("HH:mm:ss", ci)); break;
                case '%': sb.Append('%'); break;
                default: sb.Append('%').Append(c); break;
            }
        }
        return sb.ToString();
    }
}
