#!/usr/bin/env python3
# Regenerates expected.json: every template of this folder rendered with every case of cases.json by Python's
# jinja2 in the environment Hugging Face transformers' apply_chat_template uses (ImmutableSandboxedEnvironment,
# trim_blocks, lstrip_blocks, loopcontrols, tojson(ensure_ascii=False), raise_exception, strftime_now, and the
# {% generation %} tracker that records the character spans of generation blocks). strftime_now is pinned to
# 2026-01-15 so the output is reproducible; the C# tests render with the same date.
#   apt-get install -y python3-jinja2 && python3 generate_expected.py
import json, os, sys
from datetime import datetime
import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = datetime(2026, 1, 15, 9, 30, 0)


class GenerationTracker(Extension):
    # Same idea as transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body and
    # records [start, end) of that output in the whole rendered text.
    tags = {"generation"}

    def __init__(self, environment):
        super().__init__(environment)
        self.blocks = None
        self.spans = None

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        rv = caller()
        if self.blocks is not None:
            start = len("".join(self.blocks))
            self.spans.append([start, start + len(rv)])
        return rv


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)
    return env


def render(env, source, case, tokens):
    template = env.from_string(source)
    tracker = env.extensions[GenerationTracker.identifier]
    blocks, spans = [], []
    tracker.blocks, tracker.spans = blocks, spans
    ctx = dict(messages=case["messages"], tools=case.get("tools"), documents=None,
               add_generation_prompt=case["add_generation_prompt"])
    ctx.update({k: v for k, v in tokens.items() if v is not None})
    ctx.update(case.get("kwargs", {}))
    for block in template.generate(**ctx):
        blocks.append(block)
    tracker.blocks = None
    return "".join(blocks), spans


def main():
    spec = json.load(open(os.path.join(HERE, "cases.json"), encoding="utf-8"))
    out = {}
    for name, tokens in spec["templates"].items():
        source = open(os.path.join(HERE, name + ".jinja"), encoding="utf-8").read()
        out[name] = {}
        for case in spec["cases"]:
            env = make_env()
            try:
                text, spans = render(env, source, case, tokens)
                # Spans in UTF-16 code units (what .NET string indices count), not Python code points.
                u16 = lambda i: len(text[:i].encode("utf-16-le")) // 2
                out[name][case["name"]] = {"text": text, "generation_spans": [[u16(a), u16(b)] for a, b in spans]}
            except jinja2.exceptions.TemplateError as e:
                out[name][case["name"]] = {"error": str(e)}
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote expected.json:", sum(len(v) for v in out.values()), "renderings")


if __name__ == "__main__":
    sys.exit(main())
