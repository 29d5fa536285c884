// The Jinja interpreter on its own: whitespace control as transformers configures it, expressions, filters,
// tests, scoping, loop controls, clear errors with line and column, and limits that stop hostile templates.
// Expected strings are what Python's jinja2 3.1 prints for the same template (checked by hand).
using LoraSharp.Tokenizers.Chat.Jinja;

namespace LoraSharp.Tokenizers.Tests;

public class JinjaInterpreterTests
{
    private static string R(string template, object? vars = null)
    {
        var d = new Dictionary<string, object?>();
        if (vars != null) foreach (var p in vars.GetType().GetProperties()) d[p.Name] = p.GetValue(vars);
        return JinjaTemplate.Parse(template).Render(d, new JinjaRenderOptions { Now = new DateTime(2026, 1, 15) });
    }

    [Theory]
    [InlineData("{% if true %}\n  yes\n{% endif %}\n", "  yes\n")]            // trim_blocks + lstrip_blocks
    [InlineData("a  {%- if true -%}  b  {%- endif -%}  c", "abc")]
    [InlineData("  {{ 'x' }}  ", "  x  ")]                                      // lstrip does not apply to {{ }}
    [InlineData("{# c #}\nA", "A")]
    [InlineData("x {%+ if true %}y{% endif %}", "x y")]
    [InlineData("{% raw %}{{ not evaluated }}{% endraw %}", "{{ not evaluated }}")]
    public void Whitespace_ControlAsTransformersConfiguresIt(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{{ 1 + 2 * 3 }}", "7")]
    [InlineData("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}", "3 -4 1 2 3.5 1024")]
    [InlineData("{{ 'a' ~ 1 ~ none ~ true }}", "a1NoneTrue")]
    [InlineData("{{ 'ab' * 3 }}", "ababab")]
    [InlineData("{{ [1, 'a', none, 1.5, {'k': [true]}] }}", "[1, 'a', None, 1.5, {'k': [True]}]")]
    [InlineData("{{ 'abcdef'[1:4] }}{{ 'abcdef'[::-1] }}{{ [1,2,3][-1] }}", "bcdfedcba3")]
    [InlineData("{{ 'x' if false else 'y' }}{{ 'z' if false }}", "y")]
    [InlineData("{{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }}", "True True True")]
    [InlineData("{{ '  hi  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split() }}", "hi|['a', 'b', '', 'c']|['a', 'b', 'c']")]
    [InlineData("{{ 'Hello'.startswith(('x', 'He')) }} {{ 'x</think>y'.split('</think>')[-1] }}", "True y")]
    [InlineData("{{ \"it's\" }} {{ ['it\\'s'] }}", "it's [\"it's\"]")]
    [InlineData("{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 3.0 }}", "0.30000000000000004 1e+20 3.0")]
    public void Expressions_FollowPython(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{{ '  x ' | trim }}|{{ [1,2] | length }}|{{ 'ab' | upper }}|{{ u | default('d') }}", "x|2|AB|d")]
    [InlineData("{{ {'b': 1, 'a': [1, 'é\"']} | tojson }}", "{\"b\": 1, \"a\": [1, \"é\\\"\"]}")]
    [InlineData("{{ {'a': [1, {}]} | tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    {}\n  ]\n}")]
    [InlineData("{{ [3, 1, 2] | sort | join('-') }} {{ ['a', 'b'] | first }}{{ ['a', 'b'] | last }}", "1-2-3 ab")]
    [InlineData("{{ [{'r': 'u'}, {'r': 'a'}, {'r': 'u'}] | selectattr('r', 'equalto', 'u') | list | length }}", "2")]
    [InlineData("{{ [{'n': 'x'}, {'n': 'y'}] | map(attribute='n') | join(',') }}", "x,y")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{{ 'a-b' | replace('-', '+') }} {{ 'hello world' | title }} {{ 'x' | capitalize }}", "a+b Hello World X")]
    [InlineData("{{ u is defined }} {{ none is none }} {{ 'x' is string }} {{ {} is mapping }} {{ 3 is odd }} {{ 4 is divisibleby 2 }}", "False True True True True True")]
    public void Filters_And_Tests(string template, string expected) => Assert.Equal(expected, R(template));

    [Fact]
    public void Loop_VariablesElseAndControls()
    {
        Assert.Equal("0:a:F1 1:b:F0 2:c:T0 ", R("{% for x in xs %}{{ loop.index0 }}:{{ x }}:{{ 'T' if loop.last else 'F' }}{{ loop.first|int }} {% endfor %}", new { xs = new[] { "a", "b", "c" } }));
        Assert.Equal("empty", R("{% for x in [] %}x{% else %}empty{% endfor %}"));
        Assert.Equal("13", R("{% for i in range(10) %}{% if i == 4 %}{% break %}{% endif %}{% if i % 2 == 0 %}{% continue %}{% endif %}{{ i }}{% endfor %}"));
        Assert.Equal("24", R("{% for i in range(1, 5) if i is even %}{{ i }}{% endfor %}"));
    }

    [Fact]
    public void Scoping_SetInLoopDoesNotLeak_NamespaceDoes()
    {
        Assert.Equal("0 3", R("{% set n = 0 %}{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set n = n + 1 %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ n }} {{ ns.n }}"));
    }

    [Fact]
    public void Macros_DefaultsAndCallBlocks()
    {
        Assert.Equal("<a|2><b|1>", R("{% macro m(x, y=1) %}<{{ x }}|{{ y }}>{% endmacro %}{{ m('a', 2) }}{{ m(x='b') }}"));
        Assert.Equal("[inner]", R("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}inner{% endcall %}"));
        Assert.Equal("HI", R("{% set x %}hi{% endset %}{{ x | upper }}"));
    }

    [Fact]
    public void Globals_RaiseExceptionAndStrftime()
    {
        var ex = Assert.Throws<JinjaException>(() => R("{{ raise_exception('Roles must alternate') }}"));
        Assert.True(ex.IsRaised);
        Assert.Equal("Roles must alternate", ex.Message);
        Assert.Equal("15 Jan 2026 / 15 January 2026", R("{{ strftime_now('%d %b %Y') }} / {{ strftime_now('%d %B %Y') }}"));
    }

    [Theory]
    [InlineData("line1\n{% if x %}\nno end", 2, "endif")]
    [InlineData("{{ 1 + }}", 1, "expected a value")]
    [InlineData("a\nb {{ 'open }}", 2, "never closed")]
    [InlineData("{% foo %}", 1, "unknown statement")]
    [InlineData("{% include 'x' %}", 1, "not supported")]
    public void SyntaxErrors_SayLineAndWhat(string template, int line, string what)
    {
        var ex = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(template));
        Assert.Equal(line, ex.Line);
        Assert.Contains(what, ex.Message);
        Assert.Contains($"line {line}", ex.Message);
    }

    [Theory]
    [InlineData("{{ x.y.z }}", "'x' is undefined")]
    [InlineData("{{ m.a.b }}", "has no attribute 'a'")]
    [InlineData("{{ 'a' + 1 }}", "unsupported operand")]
    [InlineData("{{ [].append(1) }}", "unsafe")]
    [InlineData("{{ x | nosuchfilter }}", "unknown filter")]
    public void RuntimeErrors_AreClear(string template, string what)
    {
        var ex = Assert.Throws<JinjaException>(() => R(template, new { m = new Dictionary<string, object?>() }));
        Assert.Contains(what, ex.Message);
        Assert.Equal(1, ex.Line);
    }

    [Theory]
    [InlineData("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps")]
    [InlineData("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "characters")]
    [InlineData("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper")]
    [InlineData("{{ range(100000000) | length }}", "exceeds the limit")]
    [InlineData("{{ 'x' * 100000000 }}", "characters")]
    public void HostileTemplates_StopWithAnError(string template, string what)
    {
        var ex = Assert.Throws<JinjaException>(() => R(template));
        Assert.Contains(what, ex.Message);
    }

    [Fact]
    public void DeeplyNestedExpression_IsRefusedNotAStackOverflow()
    {
        string t = "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}";
        var ex = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(t));
        Assert.Contains("nested too deeply", ex.Message);
    }
}
