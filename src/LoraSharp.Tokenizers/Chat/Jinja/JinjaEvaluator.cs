// Tree-walking evaluator of a parsed template. Scoping follows Jinja: a for loop body is a new scope per iteration
// (a set inside it does not leak; namespace() is the way out), if blocks are not scopes, macros see the template's
// globals plus their arguments. Output is written with two tags per character: the message its text came from
// (origin, through TStr) and the message whose loop iteration wrote it (owner: the innermost for loop whose item
// is one of the conversation's message objects). {% generation %} blocks record their output spans, as
// transformers' AssistantTracker does. Hostile templates stop with an error: a step budget (every expression and
// loop iteration counts), an output size limit, a macro call depth limit and a range() size limit.
using System.Text;

namespace LoraSharp.Tokenizers.Chat.Jinja;

internal sealed partial class JinjaEvaluator
{
    private enum Flow { Normal, Break, Continue }

    private readonly int[] _lines;
    private readonly JinjaRenderOptions _options;
    private readonly Dictionary<object, int> _messageIds;
    private readonly List<Dictionary<string, object?>> _scopes = [];
    private long _steps;
    private int _callDepth, _captureDepth, _loopDepth;
    private int _owner;

    private StringBuilder _out = new();
    private List<int> _origin = [];
    private List<int> _ownerOf = [];
    private readonly List<(int Start, int End)> _generation = [];

    public JinjaEvaluator(int[] lineStarts, JinjaRenderOptions options, Dictionary<object, int>? messageIds)
    {
        _lines = lineStarts;
        _options = options;
        _messageIds = messageIds ?? new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
    }

    public JinjaRendering Run(List<Node> body, Dictionary<string, object?> variables)
    {
        _scopes.Add(Globals());
        _scopes.Add(variables);
        _scopes.Add(new Dictionary<string, object?>(StringComparer.Ordinal));
        var flow = Exec(body);
        if (flow != Flow.Normal) throw Fail("{% break %} or {% continue %} outside a for loop", 0);
        return new JinjaRendering(_out.ToString(), [.. _origin], [.. _ownerOf], [.. _generation]);
    }

    internal JinjaException Fail(string message, int pos)
    {
        if (pos <= 0 && _lines.Length == 0) return new JinjaException(message, 0, 0);
        var (l, c) = JinjaLexer.Position(_lines, Math.Max(0, pos));
        return new JinjaException(message, l, c);
    }

    private void Step(int pos)
    {
        if (++_steps > _options.MaxSteps)
            throw Fail($"the template ran more than {_options.MaxSteps} steps (a runaway loop?); raise JinjaRenderOptions.MaxSteps if it is legitimate", pos);
    }

    // ---- output

    private void Write(object? value, int pos)
    {
        if (value is Undefined) return;
        if (value is TStr t)
        {
            CheckOutput(t.Text.Length, pos);
            _out.Append(t.Text);
            _origin.AddRange(t.Origin);
            for (int i = 0; i < t.Text.Length; i++) _ownerOf.Add(_owner);
            return;
        }
        string s = Py.ToStr(value);
        CheckOutput(s.Length, pos);
        _out.Append(s);
        for (int i = 0; i < s.Length; i++) { _origin.Add(0); _ownerOf.Add(_owner); }
    }

    private void CheckOutput(int add, int pos)
    {
        if ((long)_out.Length + add > _options.MaxOutputChars)
            throw Fail($"the template's output passed {_options.MaxOutputChars} characters", pos);
    }

    /// <summary>Runs <paramref name="body"/> into a fresh buffer and returns what it wrote (a TStr when tagged).</summary>
    private object Capture(List<Node> body, int pos)
    {
        var (o, og, ow) = (_out, _origin, _ownerOf);
        _out = new StringBuilder(); _origin = []; _ownerOf = [];
        _captureDepth++;
        try
        {
            var flow = Exec(body);
            if (flow != Flow.Normal) throw Fail("{% break %} or {% continue %} outside a for loop", pos);
            return TStr.Make(_out.ToString(), [.. _origin]);
        }
        finally
        {
            _captureDepth--;
            (_out, _origin, _ownerOf) = (o, og, ow);
        }
    }

    // ---- scopes

    private object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].TryGetValue(name, out var v)) return v;
        return new Undefined($"'{name}' is undefined");
    }

    private void Assign(string name, object? value) => _scopes[^1][name] = value;

    // ---- statements

    private Flow Exec(List<Node> nodes)
    {
        foreach (var n in nodes)
        {
            Step(n.Pos);
            var f = ExecOne(n);
            if (f != Flow.Normal) return f;
        }
        return Flow.Normal;
    }

    private Flow ExecOne(Node n)
    {
        switch (n)
        {
            case TextNode t: Write(t.Text, t.Pos); return Flow.Normal;
            case OutputNode o: Write(Eval(o.Value), o.Pos); return Flow.Normal;
            case IfNode i:
                foreach (var (cond, body) in i.Branches)
                    if (Py.Truthy(Eval(cond))) return Exec(body);
                return i.Else != null ? Exec(i.Else) : Flow.Normal;
            case ForNode f: ExecFor(f); return Flow.Normal;
            case SetNode s: ExecSet(s); return Flow.Normal;
            case SetBlockNode sb: Assign(sb.Target, Capture(sb.Body, sb.Pos)); return Flow.Normal;
            case MacroNode m: Assign(m.Name, new Macro(m)); return Flow.Normal;
            case CallBlockNode cb: ExecCallBlock(cb); return Flow.Normal;
            case FilterBlockNode fb:
            {
                var text = Capture(fb.Body, fb.Pos);
                Write(ApplyFilter(fb.Filter, text, fb.Args.Select(Eval).ToList(), [], fb.Pos), fb.Pos);
                return Flow.Normal;
            }
            case BreakNode b:
                if (_loopDepth == 0) throw Fail("{% break %} outside a for loop", b.Pos);
                return Flow.Break;
            case ContinueNode c:
                if (_loopDepth == 0) throw Fail("{% continue %} outside a for loop", c.Pos);
                return Flow.Continue;
            case GenerationNode g:
            {
                int start = _out.Length;
                var flow = Exec(g.Body);
                if (_captureDepth == 0) _generation.Add((start, _out.Length));
                return flow;
            }
            default: throw Fail($"internal: unknown node {n.GetType().Name}", n.Pos);
        }
    }

    private void ExecSet(SetNode s)
    {
        var value = Eval(s.Value);
        if (s.Attr != null)
        {
            var target = Lookup(s.Targets[0]);
            if (target is not Namespace ns)
                throw Fail($"cannot set '{s.Attr}' on {Py.TypeName(target)} '{s.Targets[0]}': only a namespace() object takes attribute assignment", s.Pos);
            ns.Attrs[s.Attr] = value;
            return;
        }
        if (s.Targets.Count == 1) { Assign(s.Targets[0], value); return; }
        var items = Iterate(value, s.Pos);
        if (items.Count != s.Targets.Count)
            throw Fail($"cannot unpack {items.Count} values into {s.Targets.Count} names", s.Pos);
        for (int i = 0; i < items.Count; i++) Assign(s.Targets[i], items[i]);
    }

    private void ExecFor(ForNode f)
    {
        var items = Iterate(Eval(f.Iter), f.Iter.Pos);
        if (f.Filter != null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                Step(f.Pos);
                var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
                Bind(scope, f.Targets, item, f.Pos);
                _scopes.Add(scope);
                try { if (Py.Truthy(Eval(f.Filter))) kept.Add(item); }
                finally { _scopes.RemoveAt(_scopes.Count - 1); }
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (f.Else != null)
            {
                var fl = Exec(f.Else);
                if (fl != Flow.Normal) throw Fail("{% break %} or {% continue %} in a for loop's else block", f.Pos);
            }
            return;
        }
        int savedOwner = _owner;
        _loopDepth++;
        try
        {
            for (int i = 0; i < items.Count; i++)
            {
                Step(f.Pos);
                var item = items[i];
                var loop = new LoopInfo
                {
                    Index0 = i, Length = items.Count,
                    HasPrev = i > 0, Prev = i > 0 ? items[i - 1] : null,
                    HasNext = i + 1 < items.Count, Next = i + 1 < items.Count ? items[i + 1] : null,
                };
                var scope = new Dictionary<string, object?>(StringComparer.Ordinal) { ["loop"] = loop };
                Bind(scope, f.Targets, item, f.Pos);
                _owner = item != null && _messageIds.TryGetValue(item, out int id) ? id : savedOwner;
                _scopes.Add(scope);
                Flow flow;
                try { flow = Exec(f.Body); }
                finally { _scopes.RemoveAt(_scopes.Count - 1); }
                if (flow == Flow.Break) break;
            }
        }
        finally
        {
            _loopDepth--;
            _owner = savedOwner;
        }
    }

    private void Bind(Dictionary<string, object?> scope, List<string> targets, object? item, int pos)
    {
        if (targets.Count == 1) { scope[targets[0]] = item; return; }
        var parts = Iterate(item, pos);
        if (parts.Count != targets.Count) throw Fail($"cannot unpack {parts.Count} values into {targets.Count} loop variables", pos);
        for (int i = 0; i < parts.Count; i++) scope[targets[i]] = parts[i];
    }

    private void ExecCallBlock(CallBlockNode cb)
    {
        var call = (CallExpr)cb.Call;
        var callee = Eval(call.Callee);
        if (callee is not Macro m) throw Fail("{% call %} needs a macro", cb.Pos);
        var scopeSnapshot = _scopes.ToList();
        var caller = new Callable("caller", (_, _) =>
        {
            var saved = _scopes.ToList();
            _scopes.Clear();
            _scopes.AddRange(scopeSnapshot);
            try { return Capture(cb.Body, cb.Pos); }
            finally { _scopes.Clear(); _scopes.AddRange(saved); }
        });
        Write(CallMacro(m, call.Args.Select(Eval).ToList(), call.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value)), caller, cb.Pos), cb.Pos);
    }

    private object CallMacro(Macro m, List<object?> args, Dictionary<string, object?> kwargs, Callable? caller, int pos)
    {
        if (++_callDepth > _options.MaxCallDepth) throw Fail($"macro calls nested deeper than {_options.MaxCallDepth} (runaway recursion?)", pos);
        var saved = _scopes.ToList();
        try
        {
            var frame = new Dictionary<string, object?>(StringComparer.Ordinal);
            var ps = m.Node.Params;
            if (args.Count > ps.Count) throw Fail($"macro '{m.Node.Name}' takes {ps.Count} arguments, {args.Count} given", pos);
            // Defaults are evaluated in the macro's own scope, so the globals frame is enough.
            _scopes.RemoveRange(3, _scopes.Count - 3);
            _scopes.Add(frame);
            for (int i = 0; i < ps.Count; i++)
            {
                var (name, def) = ps[i];
                if (i < args.Count) frame[name] = args[i];
                else if (kwargs.Remove(name, out var kv)) frame[name] = kv;
                else frame[name] = def != null ? Eval(def) : new Undefined($"'{name}' is undefined");
            }
            if (kwargs.Count > 0) throw Fail($"macro '{m.Node.Name}' has no parameter '{kwargs.Keys.First()}'", pos);
            if (caller != null) frame["caller"] = caller;
            int loopDepth = _loopDepth;
            _loopDepth = 0;
            try { return Capture(m.Node.Body, pos); }
            finally { _loopDepth = loopDepth; }
        }
        finally
        {
            _callDepth--;
            _scopes.Clear();
            _scopes.AddRange(saved);
        }
    }

    // ---- expressions

    private object? Eval(Expr e)
    {
        Step(e.Pos);
        switch (e)
        {
            case ConstExpr c: return c.Value;
            case NameExpr n: return Lookup(n.Name);
            case AttrExpr a: return GetAttr(Eval(a.Obj), a.Name, a.Pos);
            case ItemExpr it: return GetItem(Eval(it.Obj), Eval(it.Index), it.Pos);
            case SliceExpr s:
                return Slice(Eval(s.Obj), s.Start == null ? null : Eval(s.Start), s.Stop == null ? null : Eval(s.Stop), s.Step == null ? null : Eval(s.Step), s.Pos);
            case CallExpr call:
            {
                var callee = Eval(call.Callee);
                var args = call.Args.Select(Eval).ToList();
                var kwargs = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in call.Kwargs) kwargs[k] = Eval(v);
                return callee switch
                {
                    Macro m => CallMacro(m, args, kwargs, null, call.Pos),
                    Callable f => InvokeCallable(f, args, kwargs, call.Pos),
                    Undefined u => throw Fail(u.Hint + " (called as a function)", call.Pos),
                    _ => throw Fail($"'{Py.TypeName(callee)}' object is not callable", call.Pos),
                };
            }
            case FilterExpr f:
            {
                var value = Eval(f.Value);
                var args = f.Args.Select(Eval).ToList();
                var kwargs = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in f.Kwargs) kwargs[k] = Eval(v);
                return ApplyFilter(f.Name, value, args, kwargs, f.Pos);
            }
            case TestExpr t:
            {
                bool r = ApplyTest(t.Name, Eval(t.Value), t.Args.Select(Eval).ToList(), t.Pos);
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                var v = Eval(u.Operand);
                switch (u.Op)
                {
                    case "not": return !Py.Truthy(v);
                    case "-":
                        if (v is long l) return -l;
                        if (v is double d) return -d;
                        if (v is bool b) return b ? -1L : 0L;
                        throw Fail($"bad operand type for unary -: '{Py.TypeName(v)}'", u.Pos);
                    default:
                        if (Py.IsNum(v)) return v is bool bb ? (bb ? 1L : 0L) : v;
                        throw Fail($"bad operand type for unary +: '{Py.TypeName(v)}'", u.Pos);
                }
            }
            case BinaryExpr b:
                if (b.Op == "and") { var l = Eval(b.Left); return Py.Truthy(l) ? Eval(b.Right) : l; }
                if (b.Op == "or") { var l = Eval(b.Left); return Py.Truthy(l) ? l : Eval(b.Right); }
                return Binary(b.Op, Eval(b.Left), Eval(b.Right), b.Pos);
            case CompareExpr c:
            {
                var left = Eval(c.First);
                foreach (var (op, re) in c.Rest)
                {
                    var right = Eval(re);
                    if (!Compare(op, left, right, re.Pos)) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr ce:
                return Py.Truthy(Eval(ce.Cond)) ? Eval(ce.Then) : ce.Else != null ? Eval(ce.Else) : new Undefined("the else branch of an inline if is undefined");
            case ListExpr le: return le.Items.Select(Eval).ToList();
            case DictExpr de:
            {
                var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in de.Items)
                {
                    var key = Eval(k);
                    d[Py.IsStr(key) ? Py.Str(key) : Py.ToStr(key)] = Eval(v);
                }
                return d;
            }
            default: throw Fail($"internal: unknown expression {e.GetType().Name}", e.Pos);
        }
    }

    private object? InvokeCallable(Callable f, List<object?> args, Dictionary<string, object?> kwargs, int pos)
    {
        try { return f.Invoke(args, kwargs); }
        catch (JinjaException) { throw; }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or OverflowException or IndexOutOfRangeException)
        {
            throw Fail($"{f.Name}(): {ex.Message}", pos);
        }
    }

    private object? Binary(string op, object? a, object? b, int pos)
    {
        if (op == "~")
        {
            var sa = StrTagged(a);
            var sb = StrTagged(b);
            CheckSize(Py.Str(sa).Length + Py.Str(sb).Length, pos);
            return TStr.Concat([sa, sb]);
        }
        if (a is Undefined ua) throw Fail(ua.Hint, pos);
        if (b is Undefined ub) throw Fail(ub.Hint, pos);
        switch (op)
        {
            case "+":
                if (Py.IsStr(a) && Py.IsStr(b)) { CheckSize(Py.Str(a).Length + Py.Str(b).Length, pos); return TStr.Concat([a!, b!]); }
                if (a is List<object?> la && b is List<object?> lb) { CheckSize(la.Count + lb.Count, pos); return la.Concat(lb).ToList(); }
                if (Py.IsNum(a) && Py.IsNum(b)) return Arith(op, a, b, pos);
                break;
            case "*":
                if (Py.IsStr(a) && b is long or bool) return Repeat(Py.Str(a), Py.ToLong(b), pos);
                if (Py.IsStr(b) && a is long or bool) return Repeat(Py.Str(b), Py.ToLong(a), pos);
                if (a is List<object?> l1 && b is long n1) return RepeatList(l1, n1, pos);
                if (b is List<object?> l2 && a is long n2) return RepeatList(l2, n2, pos);
                if (Py.IsNum(a) && Py.IsNum(b)) return Arith(op, a, b, pos);
                break;
            case "%":
                if (Py.IsStr(a)) throw Fail("printf-style '%' formatting of strings is not supported; use ~ or the format filter", pos);
                if (Py.IsNum(a) && Py.IsNum(b)) return Arith(op, a, b, pos);
                break;
            default:
                if (Py.IsNum(a) && Py.IsNum(b)) return Arith(op, a, b, pos);
                break;
        }
        throw Fail($"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'", pos);
    }

    private object Arith(string op, object? a, object? b, int pos)
    {
        bool ints = a is long or bool && b is long or bool;
        if (ints)
        {
            long x = Py.ToLong(a), y = Py.ToLong(b);
            switch (op)
            {
                case "+": return checked(x + y);
                case "-": return checked(x - y);
                case "*": return checked(x * y);
                case "/": if (y == 0) throw Fail("division by zero", pos); return (double)x / y;
                case "//": if (y == 0) throw Fail("integer division by zero", pos); return FloorDiv(x, y);
                case "%": if (y == 0) throw Fail("integer modulo by zero", pos); return x - FloorDiv(x, y) * y;
                case "**":
                    if (y < 0) return Math.Pow(x, y);
                    if (y > 4096) throw Fail("exponent too large", pos);
                    long r = 1;
                    for (long i = 0; i < y; i++) r = checked(r * x);
                    return r;
            }
        }
        double dx = Py.ToDouble(a), dy = Py.ToDouble(b);
        switch (op)
        {
            case "+": return dx + dy;
            case "-": return dx - dy;
            case "*": return dx * dy;
            case "/": if (dy == 0) throw Fail("float division by zero", pos); return dx / dy;
            case "//": if (dy == 0) throw Fail("float floor division by zero", pos); return Math.Floor(dx / dy);
            case "%": if (dy == 0) throw Fail("float modulo", pos); return dx - Math.Floor(dx / dy) * dy;
            case "**": return Math.Pow(dx, dy);
        }
        throw Fail($"unknown operator {op}", pos);
    }

    private static long FloorDiv(long x, long y)
    {
        long q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
        return q;
    }

    private void CheckSize(long chars, int pos)
    {
        if (chars > _options.MaxOutputChars) throw Fail($"a value would exceed {_options.MaxOutputChars} characters", pos);
    }

    private string Repeat(string s, long n, int pos)
    {
        if (n <= 0) return "";
        CheckSize(s.Length * n, pos);
        return string.Concat(Enumerable.Repeat(s, (int)n));
    }

    private List<object?> RepeatList(List<object?> l, long n, int pos)
    {
        if (n <= 0) return [];
        CheckSize(l.Count * n, pos);
        var r = new List<object?>();
        for (long i = 0; i < n; i++) r.AddRange(l);
        return r;
    }

    private bool Compare(string op, object? a, object? b, int pos)
    {
        switch (op)
        {
            case "==": return Py.Eq(a, b);
            case "!=": return !Py.Eq(a, b);
            case "in": return Contains(b, a, pos);
            case "notin": return !Contains(b, a, pos);
        }
        int c;
        if (Py.IsNum(a) && Py.IsNum(b)) c = Py.ToDouble(a).CompareTo(Py.ToDouble(b));
        else if (Py.IsStr(a) && Py.IsStr(b)) c = string.CompareOrdinal(Py.Str(a), Py.Str(b));
        else if (a is Undefined ua) throw Fail(ua.Hint, pos);
        else if (b is Undefined ub) throw Fail(ub.Hint, pos);
        else throw Fail($"'{op}' not supported between instances of '{Py.TypeName(a)}' and '{Py.TypeName(b)}'", pos);
        return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
    }

    private bool Contains(object? container, object? item, int pos)
    {
        switch (container)
        {
            case Undefined: return false;
            case string or TStr:
                if (!Py.IsStr(item)) throw Fail($"'in <string>' requires string as left operand, not {Py.TypeName(item)}", pos);
                return Py.Str(container).Contains(Py.Str(item), StringComparison.Ordinal);
            case List<object?> l: return l.Any(x => Py.Eq(x, item));
            case Dictionary<string, object?> d: return Py.IsStr(item) && d.ContainsKey(Py.Str(item));
            case Namespace ns: return Py.IsStr(item) && ns.Attrs.ContainsKey(Py.Str(item));
            default: throw Fail($"argument of type '{Py.TypeName(container)}' is not iterable", pos);
        }
    }

    /// <summary>Python str() keeping the origin tags of strings.</summary>
    private static object StrTagged(object? v) => v is TStr t ? t : Py.ToStr(v);

    /// <summary>The items a for loop or a filter walks: list items, dict keys, string characters; Undefined is empty.</summary>
    internal List<object?> Iterate(object? v, int pos) => v switch
    {
        List<object?> l => [.. l],
        Dictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        TStr t => Enumerable.Range(0, t.Text.Length).Select(i => (object?)TStr.Sub(t, i, 1)).ToList(),
        Undefined => [],
        _ => throw Fail($"'{Py.TypeName(v)}' object is not iterable", pos),
    };
}

/// <summary>The output of a render with its per-character tags.</summary>
internal sealed record JinjaRendering(string Text, int[] Origin, int[] Owner, (int Start, int End)[] Generation);
