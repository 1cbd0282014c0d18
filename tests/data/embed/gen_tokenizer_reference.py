#!/usr/bin/env python3
"""gen_tokenizer_reference.py - token ids from the reference tokenizer for the
WordPiece tests (tests/data/embed/tokenizer_reference.json).

Development tool, run once by hand; only the output is committed.  Needs the
`tokenizers` package (bench/embed/venv.sh) and a BERT uncased tokenizer.json
(bge-small-en-v1.5's; MiniLM's has the same normalizer, pre-tokenizer and
vocabulary):

    python gen_tokenizer_reference.py TOKENIZER_JSON > tokenizer_reference.json

The set: hand-picked cases for every rule (accents, CJK, kana, Hangul, emoji
with ZWJ sequences, flags and skin tones, full-width forms, very long words,
control, zero-width and format characters, combining marks, many scripts and
punctuation systems), texts long enough to be cut at 256 and 512 tokens, and
random strings from a fixed seed that draw on every Unicode plane.  No text
of any data set is used.
"""
import json
import random
import sys

from tokenizers import Tokenizer

HAND = [
    "Alice works at Acme Corp as a software engineer.",
    "", " ", "\t\n\r", ".", "a", "A", "[CLS]", "[UNK] [SEP]", "##ing",
    "Café naïve Ångström façade crème brûlée jalapeño São Paulo Zürich",
    "Łódź Gdańsk Kraków Wrocław Poznań ő ű ł ŀ ĳ æ œ ø ð þ ß ẞ",
    "İstanbul ıi İI Σίσυφος ΣΊΣΥΦΟΣ ς Straße STRASSE ǅ ǈ ǋ ﬁ ﬂ ﬀ",
    "東京は日本の首都です。 北京欢迎你 漢字 ひらがな カタカナ ｶﾀｶﾅ",
    "서울은 한국의 수도입니다. 한글 가 각 ㄱㅏ",
    "Москва — столица России. Ёлка ёж Ъ",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. ά έ ή ί ό ύ ώ ΐ ΰ",
    "مرحبا بالعالم العربية ١٢٣ שלום עולם עִבְרִית",
    "नमस्ते दुनिया हिन्दी ভাষা தமிழ் తెలుగు ไทย ภาษาไทย ລາວ ພາສາ မြန်မာ",
    "I love pizza 🍕🍕 and 👨‍👩‍👧 family time 🇵🇹🇯🇵 👍🏽 ❤️ ☺️ 🥰 🫠 🧑‍💻",
    "ＦＵＬＬ－ＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３ ！？（）［］",
    "supercalifragilisticexpialidocious" * 4,
    "x" * 100, "x" * 101, "é" * 100, "é" * 101, "ab" * 60 + " ok",
    "zero\u200bwidth\u200cjoiner\u200d\u2060word\ufeffbom\u00adsoft",
    "ctrl\x00\x01\x07\x1b\x7f\x80\x9fchars \ufffd replacement",
    "combining e\u0301 a\u0308 o\u0302 n\u0303 \u0301alone x\u20dd",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideographic\u2028line",
    "“quotes” ‘single’ «guillemets» „low“ — – … · • ¿¡ 、。「」『』【】《》",
    "math ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷ ∂ ∇ ∈ ∉ ⊂ ∪ ∩ α β γ ℝ ℕ ℵ",
    "currency $ € £ ¥ ₹ ₿ ¢ ₩ ₽ 100$ 5€ ¥500",
    "e-mail someone@example.com https://example.com/a?b=c#d&e=f%20g",
    "int main(void) { return 0; } // C code; x->y = a[i] + b; #include <stdio.h>",
    "numbers 3.14159 1,000,000 1e-9 0x1F 42nd 1st 2nd 3rd",
    "MiXeD CaSe WoRdS aNd UPPER lower",
    "don't won't it's I'm y'all rock'n'roll",
    "Hello, World! How are you? I'm fine: thanks; really... (yes) [no] {maybe}",
    "\u0130\u0131\u1e9e\u2126\u212a\u212b",
    "𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝟙𝟚𝟛 ① ② ⑴ ㈱ ㍿",
    "𠀀𠀁 𪜀 𫝀 𬺰 丽 﨎 﨏 﨑",
]
LONG = [
    " ".join(["This long text repeats a sentence about memory and graphs, number %d." % i for i in range(80)]),
    " ".join(["word%d" % i for i in range(700)]),
    "日本語の文章。" * 200,
]

PLANES = [(0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x2FF), (0x300, 0x36F), (0x370, 0x52F), (0x530, 0x8FF),
          (0x900, 0xDFF), (0xE00, 0xFFF), (0x1000, 0x1FFF), (0x2000, 0x2BFF), (0x2C00, 0x2FFF),
          (0x3000, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xABFF), (0xAC00, 0xD7FF),
          (0xE000, 0xF8FF), (0xF900, 0xFFFD), (0x10000, 0x1FFFF), (0x20000, 0x2FFFF), (0x30000, 0x3FFFF),
          (0xE0000, 0xE01EF), (0xF0000, 0x10FFFF)]


def random_texts(n, seed=12):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.45:
                parts.append(rng.choice(["the", "Memory", "graph", "naïve", "über", "running", "unbelievable",
                                         "x", "Q", "42", "don't", "co-op", "ÉCOLE", "straße", "東京"]))
            else:
                lo, hi = rng.choice(PLANES)
                cs = []
                for _ in range(rng.randint(1, 6)):
                    c = rng.randint(lo, hi)
                    if 0xD800 <= c <= 0xDFFF:
                        c = 0x41
                    cs.append(chr(c))
                parts.append("".join(cs))
        out.append(rng.choice([" ", "", "-", ", ", "\t"]).join(parts))
    return out


def main():
    tok = Tokenizer.from_file(sys.argv[1])
    tok.no_truncation()
    tok.no_padding()
    cases = []
    for t in HAND + LONG + random_texts(2000):
        ids = tok.encode(t).ids
        case = {"text": t, "ids": ids}
        cases.append(case)
    json.dump({"generator": "tests/data/embed/gen_tokenizer_reference.py",
               "note": "ids without truncation; tests cut them to max_tokens as BERT does "
                       "([CLS], the first max_tokens - 2 pieces, [SEP])",
               "cases": cases}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
