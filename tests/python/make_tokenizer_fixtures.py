"""Reference fixtures for anchor-rl's tokenizer.json reader, made with the Python `tokenizers`
library (the implementation transformers uses).

Builds three tiny byte-level BPE tokenizers trained here on a multilingual corpus, one per
pre-tokenizer family anchor-rl must read:
  gpt2_style    ByteLevel with its GPT-2 regex; added tokens with lstrip / rstrip /
                single_word, one non-special "normalized" token
  llama3_style  Split(Llama 3 regex) + ByteLevel, TemplateProcessing "<|begin_of_text|> $A",
                ignore_merges, merges written as ["a", "b"] pairs
  qwen2_style   NFC normalizer + Split(Qwen2 regex) + ByteLevel, chatml special tokens
and, when given, a released model's tokenizer.json (SmolLM2). For each tokenizer it draws
N random strings (random assigned Unicode incl. CJK, emoji with ZWJ / skin tones, combining
marks and decomposed accents, whitespace runs incl. tabs, CR/LF, U+3000 / U+0085 / U+00A0,
digits of several scripts, code, contractions, special tokens inside text, the empty string)
and records encode ids (add_special_tokens=True) with their offsets (as byte offsets of the
text), and decode with and without special tokens.

Usage: make_tokenizer_fixtures.py OUT_DIR [--strings N] [--released NAME=MODEL_DIR ...]
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import unicodedata

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Don't panic; it's fine, we'll see.",
    "Count down: 3 + 4 * 5 = 23, then 23 - 2 = 21. Answer: (3 + 4) * 5 - 12",
    "def main(argv):\n    for i in range(10):\n\tprint(f\"{i:03d}\")\n    return 0\n",
    "Les élèves ont étudié à l'école. Über Straße, naïve café, São Paulo, Ærøskøbing.",
    "Привет, мир! Как дела? Ελληνικά γράμματα. עברית. العربية ١٢٣٤.",
    "日本語のテキストと漢字。中文句子，包含标点符号。한국어 문장입니다.",
    "Emoji 😀👍🏽 👩‍💻 🇫🇷 ✓ ★ — “quotes” ‘single’ … ½ ² ³ Ⅻ",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 12345 3.14159 -42 1e-5",
    "   leading spaces, trailing spaces   \n\n\nnew lines\r\nand\ttabs\t\there.",
    "<|im_start|>user\nWhat is 17 + 25?<|im_end|>\n<|im_start|>assistant\n42<|im_end|>",
]

WORDS = ["the", "The", "answer", "is", "don't", "I'LL", "we've", "it's", "x", "foo_bar", "foo", "bar_baz",
         "café", "naïve", "日本", "中文", "Привет", "λόγος", "مرحبا", "ſ's", "O'Neil", "i", "α", "1st", "2nd"]
CODE = ["def f(x):\n    return x*2", "if (a && b) { c++; }", "x = [1, 2, 3]\n", "#include <vector>", "a->b::c",
        "print(\"hi\")", "// comment\n", "λx. x + 1", "\tindent\n\t\tmore"]
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\u3000", "\u00a0", "\u0085", "\u2028", "\u2003",
              "\t \t", " \r", "\u200b"]
# ASCII control characters: byte-level vocabularies of released models may lack some of them
# (SmolLM2's lacks 21 byte values), and the bytes after a dropped one must keep their spans.
CONTROL = [chr(c) for c in list(range(0x01, 0x09)) + [0x0B, 0x0C] + list(range(0x0E, 0x20)) + [0x7F]]
EMOJI = ["😀", "👍", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "❤️", "✓", "⭐", "🙂", "🤖", "🧪"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "\u0301", "A\u030a", "\u1100\u1161\u11a8",
             "\u0915\u093c", "\u0bc6\u0bbe", "Å", "é", "ñ"]
DIGITS = ["0", "7", "42", "123", "2024", "3.14", "1,000,000", "١٢٣", "७८९", "²", "½", "Ⅻ", "１２３", "-5", "1e9"]
BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F),
          (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x23FF), (0x3000, 0x30FF),
          (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF)]


def random_char(rng):
    lo, hi = rng.choice(BLOCKS)
    while True:
        c = rng.randint(lo, hi)
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        # Only code points assigned in Python's Unicode version: regex engines built on other
        # Unicode versions disagree about unassigned ones (docs/models.md, "Tokenizers").
        if unicodedata.category(ch) != "Cn":
            return ch


def random_string(rng, specials):
    kind = rng.random()
    if kind < 0.02:
        return ""
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.25:
            parts.append("".join(random_char(rng) for _ in range(rng.randint(1, 6))))
        elif r < 0.4:
            parts.append(rng.choice(WORDS))
        elif r < 0.5:
            parts.append(rng.choice(WHITESPACE) * rng.randint(1, 3))
        elif r < 0.58:
            parts.append(rng.choice(EMOJI))
        elif r < 0.66:
            parts.append(rng.choice(COMBINING))
        elif r < 0.74:
            parts.append(rng.choice(DIGITS))
        elif r < 0.8:
            parts.append(rng.choice(CODE))
        elif r < 0.86 and specials:
            parts.append(rng.choice(specials))
        elif r < 0.93:
            parts.append(rng.choice(CORPUS)[rng.randint(0, 20):rng.randint(20, 80)])
        elif r < 0.96:
            parts.append("".join(rng.choice(CONTROL) for _ in range(rng.randint(1, 2))))
        else:
            parts.append(" ")
    return "".join(parts)


def train(vocab_size, pre, normalizer=None, post=None, specials=(), ignore_merges=False, seed=0):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    rng = random.Random(seed)
    corpus = CORPUS * 20 + [random_string(rng, []) for _ in range(400)]
    tok.train_from_iterator(corpus, trainer=trainer)
    if post is not None:
        tok.post_processor = post
    return tok


def build_tokenizers():
    out = {}
    gpt2 = train(700, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                 post=processors.ByteLevel(trim_offsets=True), specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    gpt2.add_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False),
                     AddedToken("[SEP]", lstrip=False, rstrip=True, special=True, normalized=False),
                     AddedToken("foo_bar", single_word=True, special=False, normalized=False),
                     AddedToken(" [IND]", special=False, normalized=True)])
    out["gpt2_style"] = gpt2

    llama3_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    llama3 = train(800, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), specials=llama3_specials,
        ignore_merges=True, seed=1)
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", llama3.token_to_id("<|begin_of_text|>"))])])
    out["llama3_style"] = llama3

    qwen2 = train(800, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), normalizer=normalizers.NFC(),
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], seed=2)
    out["qwen2_style"] = qwen2
    return out


def write_reference(tok, path_json, n_strings, seed):
    specials = [t.content for t in tok.get_added_tokens_decoder().values()]
    rng = random.Random(seed)
    cases = [""] + CORPUS + [random_string(rng, specials) for _ in range(n_strings)]
    encodings = tok.encode_batch(cases, add_special_tokens=True)
    rows = []
    for text, enc in zip(cases, encodings):
        ids = enc.ids
        byte_at = [0]  # byte offset of each character index (tokenizers' offsets count characters)
        for ch in text:
            byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
        rows.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                     "decoded_skip": tok.decode(ids, skip_special_tokens=True),
                     "offsets": [[byte_at[b], byte_at[e]] for b, e in enc.offsets]})
    with open(path_json, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--strings", type=int, default=10000)
    ap.add_argument("--released", action="append", default=[], help="NAME=MODEL_DIR with a tokenizer.json")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    stamp_src = open(__file__, "rb").read() + repr(sorted(args.released)).encode() + str(args.strings).encode()
    for spec in args.released:
        stamp_src += open(os.path.join(spec.split("=", 1)[1], "tokenizer.json"), "rb").read()
    stamp = hashlib.sha256(stamp_src).hexdigest()
    marker = os.path.join(args.out_dir, ".complete")
    if os.path.exists(marker) and open(marker).read() == stamp:
        return 0
    for i, (name, tok) in enumerate(build_tokenizers().items()):
        d = os.path.join(args.out_dir, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        write_reference(tok, os.path.join(args.out_dir, name + ".reference.json"), args.strings, 100 + i)
    for spec in args.released:
        name, model_dir = spec.split("=", 1)
        d = os.path.join(args.out_dir, name)
        os.makedirs(d, exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if os.path.exists(os.path.join(model_dir, f)):
                shutil.copy(os.path.join(model_dir, f), os.path.join(d, f))
        write_reference(Tokenizer.from_file(os.path.join(d, "tokenizer.json")),
                        os.path.join(args.out_dir, name + ".reference.json"), args.strings, 200)
    with open(marker, "w") as f:
        f.write(stamp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
