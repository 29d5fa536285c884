// The syntax tree of a parsed template: statements (Node) and expressions (Expr). Every node keeps its source
// position for error messages.
namespace LoraSharp.Tokenizers.Chat.Jinja;

internal abstract record Node(int Pos);
internal sealed record TextNode(int Pos, string Text) : Node(Pos);
internal sealed record OutputNode(int Pos, Expr Value) : Node(Pos);
internal sealed record IfNode(int Pos, List<(Expr Cond, List<Node> Body)> Branches, List<Node>? Else) : Node(Pos);
internal sealed record ForNode(int Pos, List<string> Targets, Expr Iter, Expr? Filter, List<Node> Body, List<Node>? Else) : Node(Pos);
internal sealed record SetNode(int Pos, List<string> Targets, string? Attr, Expr Value) : Node(Pos);
internal sealed record SetBlockNode(int Pos, string Target, List<Node> Body) : Node(Pos);
internal sealed record MacroNode(int Pos, string Name, List<(string Name, Expr? Default)> Params, List<Node> Body) : Node(Pos);
internal sealed record CallBlockNode(int Pos, Expr Call, List<Node> Body) : Node(Pos);
internal sealed record FilterBlockNode(int Pos, string Filter, List<Expr> Args, List<Node> Body) : Node(Pos);
internal sealed record BreakNode(int Pos) : Node(Pos);
internal sealed record ContinueNode(int Pos) : Node(Pos);
internal sealed record GenerationNode(int Pos, List<Node> Body) : Node(Pos);

internal abstract record Expr(int Pos);
internal sealed record ConstExpr(int Pos, object? Value) : Expr(Pos);
internal sealed record NameExpr(int Pos, string Name) : Expr(Pos);
internal sealed record AttrExpr(int Pos, Expr Obj, string Name) : Expr(Pos);
internal sealed record ItemExpr(int Pos, Expr Obj, Expr Index) : Expr(Pos);
internal sealed record SliceExpr(int Pos, Expr Obj, Expr? Start, Expr? Stop, Expr? Step) : Expr(Pos);
internal sealed record CallExpr(int Pos, Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Pos);
internal sealed record FilterExpr(int Pos, Expr Value, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Pos);
internal sealed record TestExpr(int Pos, Expr Value, string Name, List<Expr> Args, bool Negated) : Expr(Pos);
internal sealed record UnaryExpr(int Pos, string Op, Expr Operand) : Expr(Pos);
internal sealed record BinaryExpr(int Pos, string Op, Expr Left, Expr Right) : Expr(Pos);
internal sealed record CompareExpr(int Pos, Expr First, List<(string Op, Expr Right)> Rest) : Expr(Pos);
internal sealed record CondExpr(int Pos, Expr Then, Expr Cond, Expr? Else) : Expr(Pos);
internal sealed record ListExpr(int Pos, List<Expr> Items) : Expr(Pos);
internal sealed record DictExpr(int Pos, List<(Expr Key, Expr Value)> Items) : Expr(Pos);
