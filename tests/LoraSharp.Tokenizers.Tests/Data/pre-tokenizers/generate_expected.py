#!/usr/bin/env python3
# Regenerates expected.json: how llama.cpp's pre-tokenizer types split the test inputs of llama.cpp's vocab tests
# (../../../../shared/tokenizers/llama-cpp-vocab/ggml-vocab-gpt-2.gguf.inp) plus a few extra strings, computed with
# Python's `regex` module (Unicode classes over code points) the way llama.cpp's unicode_regex_split applies
# regex_exprs: every pattern in turn cuts each piece into its matches and the gaps between them. The patterns are
# the tokenizer.json originals llama-vocab.cpp quotes for each type (from llama.cpp's src/llama-vocab.cpp).
#   pip/apt: python3-regex;  python3 generate_expected.py
import json, os
import regex

HERE = os.path.dirname(os.path.abspath(__file__))
INP = os.path.join(HERE, "..", "..", "..", "..", "..", "shared", "tokenizers", "llama-cpp-vocab", "ggml-vocab-gpt-2.gguf.inp")

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT4O = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
TEKKEN = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PORO = r" ?[^(\s|.,!?…。，、।۔،)]+"
DEEPSEEK_LETTERS = "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝ\u1F5F-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ"

TYPES = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
    "gpt-2": [GPT2],
    "llama-bpe": [LLAMA3],
    "qwen2": [QWEN2],
    "smollm": [r"\p{N}", GPT2],
    "deepseek-llm": ["[\r\n]", r"\s?[" + DEEPSEEK_LETTERS + "]+", r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+$", "[一-龥ࠀ-一가-퟿]+", r"\p{N}+"],
    "deepseek-coder": ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
    "deepseek-v3": [r"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
    "poro-chat": [PORO],
    "viking": [PORO, r"\p{N}"],
    "tekken": [TEKKEN],
    "gpt-4o": [GPT4O],
    "chameleon": ["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", r"\p{N}", r"[\p{P}!-/:-@\[-`{-~]", GPT2],
    "bailingmoe": [r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"],
    "seed-coder": [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"],
}

EXTRA = [
    "HelloWorld camelCase XMLHttpRequest don't I'LL WE'RE",
    "Price: $1,234,567.89 (approx.) + 42% <= 100 ~ | ^",
    "中文测试，日本語のテキスト。한국어 텍스트!",
    "Grüße aus Zürich – naïve café, ÆØÅ ß",
    "<sentinel:12> IMGIMGABZ \t\t  code    indented",
    "line one\r\nline two\n\n\n   trailing   ",
    "x/y/z path/to/file.txt\n/root",
]


def split(patterns, text):
    pieces = [text]
    for p in patterns:
        rx = regex.compile(p)
        out = []
        for piece in pieces:
            last = 0
            for m in rx.finditer(piece):
                if m.end() == m.start():
                    continue
                if m.start() > last:
                    out.append(piece[last:m.start()])
                out.append(m.group(0))
                last = m.end()
            if last < len(piece):
                out.append(piece[last:])
        pieces = out
    return pieces


def main():
    raw = open(INP, encoding="utf-8").read()
    cases = [c for c in raw.split("\n__ggml_vocab_test__\n")]
    if cases and cases[-1] == "":
        cases = cases[:-1]
    cases = [c for c in cases if all(ord(ch) < 0x10000 for ch in c)]  # .NET regex classes see UTF-16 units
    cases += EXTRA
    out = {"cases": cases, "splits": {name: [split(p, c) for c in cases] for name, p in TYPES.items()}}
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(len(cases), "cases x", len(TYPES), "pre-tokenizers")


if __name__ == "__main__":
    main()
