// Recursive-descent parser of the Jinja subset chat templates use, with Jinja's precedence:
//   cond (a if b else c) < or < and < not < compare (== != < > <= >= in, not in) < + - < ~ < * / // % < ** <
//   unary - + < postfix (.attr [item] [a:b:c] (call)) followed by | filters and "is" tests.
// Statements: if/elif/else, for (tuple targets, "if" filter, else, loop.*), set (names, tuples, ns.attr, block
// set), macro, call block, filter block, break/continue, generation. Unknown statements (extends, include, import,
// block) are refused with their position: a chat template renders alone.
namespace LoraSharp.Tokenizers.Chat.Jinja;

internal sealed class JinjaParser
{
    private readonly List<Tok> _t;
    private readonly int[] _lines;
    private int _i;
    private int _depth;
    private const int MaxDepth = 200;

    private JinjaParser(List<Tok> tokens, int[] lineStarts)
    {
        _t = tokens;
        _lines = lineStarts;
    }

    public static List<Node> Parse(string source, out int[] lineStarts)
    {
        var (toks, lines) = JinjaLexer.Tokenize(source);
        lineStarts = lines;
        var p = new JinjaParser(toks, lines);
        var body = p.ParseBody([], out string? end);
        if (end != null) throw p.Error($"unexpected {{% {end} %}}", p.Peek.Pos);
        return body;
    }

    private Tok Peek => _t[_i];
    private Tok Next() => _t[_i++];

    private JinjaException Error(string message, int pos)
    {
        var (l, c) = JinjaLexer.Position(_lines, pos);
        return new JinjaException(message, l, c);
    }

    private bool IsOp(string op) => Peek.Kind == TokKind.Op && Peek.Value == op;
    private bool IsName(string name) => Peek.Kind == TokKind.Name && Peek.Value == name;

    private Tok Expect(TokKind kind, string? value = null)
    {
        var t = Peek;
        if (t.Kind != kind || (value != null && t.Value != value))
            throw Error($"expected {Describe(kind, value)} but found {Describe(t)}", t.Pos);
        _i++;
        return t;
    }

    private static string Describe(TokKind k, string? v) => k switch
    {
        TokKind.BlockEnd => "%}",
        TokKind.VarEnd => "}}",
        TokKind.Name => v ?? "a name",
        TokKind.Op => $"'{v}'",
        _ => v ?? k.ToString(),
    };

    private static string Describe(Tok t) => t.Kind switch
    {
        TokKind.Eof => "the end of the template",
        TokKind.BlockEnd => "%}",
        TokKind.VarEnd => "}}",
        TokKind.String => $"string '{t.Value}'",
        TokKind.Text => "text",
        _ => $"'{t.Value}'",
    };

    // Parses statements until one of the end keywords (returned in `end`, its tag consumed up to the keyword).
    private List<Node> ParseBody(string[] ends, out string? end, int openPos = -1)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = Peek;
            switch (t.Kind)
            {
                case TokKind.Eof:
                    if (ends.Length > 0)
                        throw Error($"this block is never closed: missing {{% {string.Join(" / ", ends)} %}} before the end of the template", openPos >= 0 ? openPos : t.Pos);
                    end = null;
                    return nodes;
                case TokKind.Text:
                    _i++;
                    nodes.Add(new TextNode(t.Pos, t.Value));
                    break;
                case TokKind.VarBegin:
                    _i++;
                    var e = ParseExpression();
                    Expect(TokKind.VarEnd);
                    nodes.Add(new OutputNode(t.Pos, e));
                    break;
                case TokKind.BlockBegin:
                    var kw = _t[_i + 1];
                    if (kw.Kind == TokKind.Name && Array.IndexOf(ends, kw.Value) >= 0)
                    {
                        _i += 2;
                        end = kw.Value;
                        return nodes;
                    }
                    _i++;
                    nodes.Add(ParseStatement());
                    break;
                default:
                    throw Error($"unexpected {Describe(t)}", t.Pos);
            }
        }
    }

    private Node ParseStatement()
    {
        var kw = Expect(TokKind.Name);
        if (++_depth > MaxDepth) throw Error("statements are nested too deeply", kw.Pos);
        try
        {
            switch (kw.Value)
            {
                case "if": return ParseIf(kw.Pos);
                case "for": return ParseFor(kw.Pos);
                case "set": return ParseSet(kw.Pos);
                case "macro": return ParseMacro(kw.Pos);
                case "call": return ParseCallBlock(kw.Pos);
                case "filter": return ParseFilterBlock(kw.Pos);
                case "break": Expect(TokKind.BlockEnd); return new BreakNode(kw.Pos);
                case "continue": Expect(TokKind.BlockEnd); return new ContinueNode(kw.Pos);
                case "generation":
                {
                    Expect(TokKind.BlockEnd);
                    var body = ParseBody(["endgeneration"], out _, kw.Pos);
                    Expect(TokKind.BlockEnd);
                    return new GenerationNode(kw.Pos, body);
                }
                case "extends": case "include": case "import": case "from": case "block":
                    throw Error($"{{% {kw.Value} %}} is not supported: a chat template must render on its own", kw.Pos);
                default:
                    throw Error($"unknown statement {{% {kw.Value} %}}", kw.Pos);
            }
        }
        finally { _depth--; }
    }

    private Node ParseIf(int pos)
    {
        var branches = new List<(Expr, List<Node>)>();
        var cond = ParseExpression();
        Expect(TokKind.BlockEnd);
        List<Node>? elseBody = null;
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"], out string? end, pos);
            branches.Add((cond, body));
            if (end == "elif")
            {
                cond = ParseExpression();
                Expect(TokKind.BlockEnd);
                continue;
            }
            Expect(TokKind.BlockEnd);
            if (end == "else")
            {
                elseBody = ParseBody(["endif"], out _, pos);
                Expect(TokKind.BlockEnd);
            }
            break;
        }
        return new IfNode(pos, branches, elseBody);
    }

    private Node ParseFor(int pos)
    {
        var targets = new List<string>();
        bool paren = IsOp("(");
        if (paren) _i++;
        targets.Add(Expect(TokKind.Name).Value);
        while (IsOp(",")) { _i++; targets.Add(Expect(TokKind.Name).Value); }
        if (paren) Expect(TokKind.Op, ")");
        Expect(TokKind.Name, "in");
        var iter = ParseCondExpr(allowCond: false);
        Expr? filter = null;
        if (IsName("if")) { _i++; filter = ParseExpression(); }
        if (IsName("recursive")) throw Error("recursive for loops are not supported", Peek.Pos);
        Expect(TokKind.BlockEnd);
        var body = ParseBody(["else", "endfor"], out string? end, pos);
        Expect(TokKind.BlockEnd);
        List<Node>? elseBody = null;
        if (end == "else")
        {
            elseBody = ParseBody(["endfor"], out _, pos);
            Expect(TokKind.BlockEnd);
        }
        return new ForNode(pos, targets, iter, filter, body, elseBody);
    }

    private Node ParseSet(int pos)
    {
        var first = Expect(TokKind.Name).Value;
        if (IsOp("."))
        {
            _i++;
            var attr = Expect(TokKind.Name).Value;
            Expect(TokKind.Op, "=");
            var v = ParseExpression();
            Expect(TokKind.BlockEnd);
            return new SetNode(pos, [first], attr, v);
        }
        var targets = new List<string> { first };
        while (IsOp(",")) { _i++; targets.Add(Expect(TokKind.Name).Value); }
        if (Peek.Kind == TokKind.BlockEnd && targets.Count == 1)
        {
            _i++;
            var body = ParseBody(["endset"], out _, pos);
            Expect(TokKind.BlockEnd);
            return new SetBlockNode(pos, first, body);
        }
        Expect(TokKind.Op, "=");
        var value = ParseTupleOrExpression();
        Expect(TokKind.BlockEnd);
        return new SetNode(pos, targets, null, value);
    }

    private Node ParseMacro(int pos)
    {
        var name = Expect(TokKind.Name).Value;
        Expect(TokKind.Op, "(");
        var ps = new List<(string, Expr?)>();
        while (!IsOp(")"))
        {
            var p = Expect(TokKind.Name).Value;
            Expr? def = null;
            if (IsOp("=")) { _i++; def = ParseExpression(); }
            ps.Add((p, def));
            if (!IsOp(")")) Expect(TokKind.Op, ",");
        }
        _i++;
        Expect(TokKind.BlockEnd);
        var body = ParseBody(["endmacro"], out _, pos);
        Expect(TokKind.BlockEnd);
        return new MacroNode(pos, name, ps, body);
    }

    private Node ParseCallBlock(int pos)
    {
        if (IsOp("(")) throw Error("{% call(args) %} with caller arguments is not supported", Peek.Pos);
        var call = ParseExpression();
        if (call is not CallExpr) throw Error("{% call %} needs a macro call, e.g. {% call m() %}", pos);
        Expect(TokKind.BlockEnd);
        var body = ParseBody(["endcall"], out _, pos);
        Expect(TokKind.BlockEnd);
        return new CallBlockNode(pos, call, body);
    }

    private Node ParseFilterBlock(int pos)
    {
        var name = Expect(TokKind.Name).Value;
        var args = new List<Expr>();
        if (IsOp("("))
        {
            _i++;
            while (!IsOp(")")) { args.Add(ParseExpression()); if (!IsOp(")")) Expect(TokKind.Op, ","); }
            _i++;
        }
        Expect(TokKind.BlockEnd);
        var body = ParseBody(["endfilter"], out _, pos);
        Expect(TokKind.BlockEnd);
        return new FilterBlockNode(pos, name, args, body);
    }

    // ---- expressions

    private Expr ParseTupleOrExpression()
    {
        int pos = Peek.Pos;
        var e = ParseExpression();
        if (!IsOp(",")) return e;
        var items = new List<Expr> { e };
        while (IsOp(",")) { _i++; if (Peek.Kind == TokKind.BlockEnd) break; items.Add(ParseExpression()); }
        return new ListExpr(pos, items);
    }

    public Expr ParseExpression() => ParseCondExpr(allowCond: true);

    private Expr Guard(Func<Expr> f)
    {
        if (++_depth > MaxDepth) throw Error("the expression is nested too deeply", Peek.Pos);
        try { return f(); } finally { _depth--; }
    }

    private Expr ParseCondExpr(bool allowCond) => Guard(() =>
    {
        var e = ParseOr();
        while (allowCond && IsName("if"))
        {
            int pos = Next().Pos;
            var cond = ParseOr();
            Expr? alt = null;
            if (IsName("else")) { _i++; alt = ParseCondExpr(true); }
            e = new CondExpr(pos, e, cond, alt);
        }
        return e;
    });

    private Expr ParseOr()
    {
        var e = ParseAnd();
        while (IsName("or")) { int p = Next().Pos; e = new BinaryExpr(p, "or", e, ParseAnd()); }
        return e;
    }

    private Expr ParseAnd()
    {
        var e = ParseNot();
        while (IsName("and")) { int p = Next().Pos; e = new BinaryExpr(p, "and", e, ParseNot()); }
        return e;
    }

    private Expr ParseNot()
    {
        if (IsName("not")) { int p = Next().Pos; return Guard(() => new UnaryExpr(p, "not", ParseNot())); }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int pos = Peek.Pos;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Peek.Kind == TokKind.Op && Peek.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (IsName("in")) { _i++; rest.Add(("in", ParseMath1())); }
            else if (IsName("not") && _t[_i + 1].Kind == TokKind.Name && _t[_i + 1].Value == "in")
            {
                _i += 2;
                rest.Add(("notin", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(pos, first, rest);
    }

    private Expr ParseMath1()
    {
        var e = ParseConcat();
        while (Peek.Kind == TokKind.Op && Peek.Value is "+" or "-") { var t = Next(); e = new BinaryExpr(t.Pos, t.Value, e, ParseConcat()); }
        return e;
    }

    private Expr ParseConcat()
    {
        var e = ParseMath2();
        while (IsOp("~")) { var t = Next(); e = new BinaryExpr(t.Pos, "~", e, ParseMath2()); }
        return e;
    }

    private Expr ParseMath2()
    {
        var e = ParsePow();
        while (Peek.Kind == TokKind.Op && Peek.Value is "*" or "/" or "//" or "%") { var t = Next(); e = new BinaryExpr(t.Pos, t.Value, e, ParsePow()); }
        return e;
    }

    private Expr ParsePow()
    {
        var e = ParseUnary();
        while (IsOp("**")) { var t = Next(); e = new BinaryExpr(t.Pos, "**", e, ParseUnary()); }
        return e;
    }

    private Expr ParseUnary() => Guard(() =>
    {
        if (Peek.Kind == TokKind.Op && Peek.Value is "-" or "+")
        {
            var t = Next();
            var operand = ParseUnaryNoFilter();
            return ParseFilters(new UnaryExpr(t.Pos, t.Value, operand));
        }
        return ParseFilters(ParsePostfix(ParsePrimary()));
    });

    private Expr ParseUnaryNoFilter()
    {
        if (Peek.Kind == TokKind.Op && Peek.Value is "-" or "+")
        {
            var t = Next();
            return new UnaryExpr(t.Pos, t.Value, Guard(ParseUnaryNoFilter));
        }
        return ParsePostfix(ParsePrimary());
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokKind.String:
            {
                string s = t.Value;
                while (Peek.Kind == TokKind.String) s += Next().Value; // adjacent literals concatenate
                return new ConstExpr(t.Pos, s);
            }
            case TokKind.Int: return new ConstExpr(t.Pos, t.IntValue);
            case TokKind.Float: return new ConstExpr(t.Pos, t.FloatValue);
            case TokKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(t.Pos, true),
                    "false" or "False" => new ConstExpr(t.Pos, false),
                    "none" or "None" => new ConstExpr(t.Pos, null),
                    _ => new NameExpr(t.Pos, t.Value),
                };
            case TokKind.Op when t.Value == "(":
            {
                if (IsOp(")")) { _i++; return new ListExpr(t.Pos, []); }
                var e = ParseExpression();
                if (IsOp(","))
                {
                    var items = new List<Expr> { e };
                    while (IsOp(",")) { _i++; if (IsOp(")")) break; items.Add(ParseExpression()); }
                    e = new ListExpr(t.Pos, items);
                }
                Expect(TokKind.Op, ")");
                return e;
            }
            case TokKind.Op when t.Value == "[":
            {
                var items = new List<Expr>();
                while (!IsOp("]")) { items.Add(ParseExpression()); if (!IsOp("]")) Expect(TokKind.Op, ","); }
                _i++;
                return new ListExpr(t.Pos, items);
            }
            case TokKind.Op when t.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var k = ParseExpression();
                    Expect(TokKind.Op, ":");
                    items.Add((k, ParseExpression()));
                    if (!IsOp("}")) Expect(TokKind.Op, ",");
                }
                _i++;
                return new DictExpr(t.Pos, items);
            }
            default:
                throw Error($"expected a value but found {Describe(t)}", t.Pos);
        }
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            if (IsOp("."))
            {
                var t = Next();
                var name = Next();
                if (name.Kind == TokKind.Name) e = new AttrExpr(t.Pos, e, name.Value);
                else if (name.Kind == TokKind.Int) e = new ItemExpr(t.Pos, e, new ConstExpr(name.Pos, name.IntValue));
                else throw Error($"expected an attribute name after '.' but found {Describe(name)}", name.Pos);
            }
            else if (IsOp("["))
            {
                var t = Next();
                Expr? a = null, b = null, c = null;
                bool slice = false;
                if (!IsOp(":")) a = ParseExpression();
                if (IsOp(":"))
                {
                    slice = true;
                    _i++;
                    if (!IsOp(":") && !IsOp("]")) b = ParseExpression();
                    if (IsOp(":")) { _i++; if (!IsOp("]")) c = ParseExpression(); }
                }
                Expect(TokKind.Op, "]");
                e = slice ? new SliceExpr(t.Pos, e, a, b, c) : new ItemExpr(t.Pos, e, a!);
            }
            else if (IsOp("("))
            {
                var t = Next();
                var (args, kwargs) = ParseArgs();
                e = new CallExpr(t.Pos, e, args, kwargs);
            }
            else return e;
        }
    }

    // After "(": arguments up to and including ")".
    private (List<Expr>, List<(string, Expr)>) ParseArgs()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (Peek.Kind == TokKind.Name && _t[_i + 1].Kind == TokKind.Op && _t[_i + 1].Value == "=")
            {
                var n = Next().Value;
                _i++;
                kwargs.Add((n, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Error("a positional argument follows a keyword argument", Peek.Pos);
                args.Add(ParseExpression());
            }
            if (!IsOp(")")) Expect(TokKind.Op, ",");
        }
        _i++;
        return (args, kwargs);
    }

    private Expr ParseFilters(Expr e)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                var t = Next();
                var name = Expect(TokKind.Name).Value;
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (IsOp("(")) { _i++; (args, kwargs) = ParseArgs(); }
                e = new FilterExpr(t.Pos, e, name, args, kwargs);
            }
            else if (IsName("is"))
            {
                var t = Next();
                bool neg = false;
                if (IsName("not")) { _i++; neg = true; }
                var nameTok = Next();
                string name = nameTok.Kind switch
                {
                    TokKind.Name => nameTok.Value,
                    TokKind.Op when nameTok.Value is "==" or "!=" or "<" or ">" or "<=" or ">=" => nameTok.Value,
                    _ => throw Error($"expected a test name after 'is' but found {Describe(nameTok)}", nameTok.Pos),
                };
                var args = new List<Expr>();
                if (IsOp("("))
                {
                    _i++;
                    var (a, kw) = ParseArgs();
                    args = a;
                    args.AddRange(kw.Select(k => k.Item2));
                }
                else if (Peek.Kind is TokKind.String or TokKind.Int or TokKind.Float
                         || (Peek.Kind == TokKind.Name && Peek.Value is not ("else" or "or" or "and" or "if" or "in" or "not" or "is"))
                         || IsOp("[") || IsOp("{"))
                {
                    args.Add(ParsePostfix(ParsePrimary()));
                }
                e = new TestExpr(t.Pos, e, name, args, neg);
            }
            else return e;
        }
    }
}
