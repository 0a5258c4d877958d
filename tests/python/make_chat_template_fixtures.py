"""Reference renderings of chat templates by transformers' Jinja renderer (what
apply_chat_template uses), for tests/unit/test_chat_template.cpp.

For every template in tests/fixtures/chat_templates/*.jinja and a set of conversations (with and
without a system turn, multi-turn, whitespace to trim, non-ASCII, Qwen3 <think> history), writes
{template, messages, add_generation_prompt, text} rows. With --tokenizer NAME=DIR it also records
the ids of `tokenizer(text, add_special_tokens=False)` for the model's own template
(apply_chat_template(tokenize=True) encodes that way).

Usage: make_chat_template_fixtures.py OUT.json [--tokenizer smollm2=MODEL_DIR]
"""
import argparse
import glob
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers.utils.chat_template_utils import render_jinja_template  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "..", "fixtures", "chat_templates")

CONVERSATIONS = [
    [{"role": "user", "content": "What is 17 + 25?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "  Tell me a joke.  \n"}],
    [{"role": "system", "content": "  You solve arithmetic.\n"}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}],
    [{"role": "user", "content": "Привет, 日本語 😀 — «quotes»\n\ttab"}],
    [{"role": "user", "content": "Solve: 3 * 7"}, {"role": "assistant", "content": "<think>3*7</think>21"}],
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tokenizer", action="append", default=[])
    args = ap.parse_args()
    tokenizers = {}
    for spec in args.tokenizer:
        name, d = spec.split("=", 1)
        from transformers import AutoTokenizer
        tokenizers[name] = AutoTokenizer.from_pretrained(d)
    rows = []
    for path in sorted(glob.glob(os.path.join(TEMPLATES, "*.jinja"))):
        name = os.path.basename(path)[:-len(".jinja")]
        template = open(path, encoding="utf-8").read()
        for messages in CONVERSATIONS:
            for gen in (True, False):
                try:
                    rendered = render_jinja_template(conversations=[messages], chat_template=template,
                                                     add_generation_prompt=gen, bos_token="<|begin_of_text|>",
                                                     eos_token="</s>")
                    if isinstance(rendered, tuple):  # (texts, generation indices) in transformers 5
                        rendered = rendered[0]
                    text = rendered[0]
                except Exception as e:  # a template may refuse a conversation: record nothing
                    print(f"{name}: {e}", file=sys.stderr)
                    continue
                row = {"template": name, "messages": messages, "add_generation_prompt": gen, "text": text}
                if name in tokenizers:
                    row["ids"] = tokenizers[name](text, add_special_tokens=False).input_ids
                    # transformers' own path, to show the two agree
                    chat_ids = tokenizers[name].apply_chat_template(messages, tokenize=True, add_generation_prompt=gen)
                    if not isinstance(chat_ids, list):  # a BatchEncoding in transformers 5
                        chat_ids = chat_ids["input_ids"]
                    assert list(chat_ids) == row["ids"], (name, messages)
                rows.append(row)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
