"""Benchmark: encode throughput of anchor-rl's tokenizer.json reader vs the `tokenizers` library
(Rust, what transformers uses) on the same texts, one thread each, best of 3, printed side by
side. Texts: the 10 011 reference strings of the tokenizer tests (mixed scripts, emoji, code)
and English prose (the README, repeated).

    scripts/bench/bench_tokenizer.py [--model ~/.cache/anchor-rl/models/smollm2-135m-instruct]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import make_tokenizer_fixtures as tokfix  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/anchor-rl/models/smollm2-135m-instruct"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anchor-bench-tokenizer"))
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    import random
    rng = random.Random(0)
    mixed = [tokfix.random_string(rng, ["<|im_start|>", "<|im_end|>"]) for _ in range(10000)]
    prose = [p for p in open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().split("\n\n") if p.strip()] * 20
    print(f"command: {' '.join(sys.argv)}")
    print(f"model: {args.model}")
    print("| texts | strings | MB | anchor-rl MB/s | tokenizers encode MB/s | tokenizers encode_batch (1 thread) MB/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, texts in (("mixed Unicode", mixed), ("English prose", prose)):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
            path = f.name
        out = subprocess.run([args.binary, "--model", args.model, "--texts", path], check=True, capture_output=True,
                             text=True).stdout
        ours = json.loads(out)
        mb = sum(len(t.encode()) for t in texts) / 1e6
        best_single = best_batch = 1e30
        for _ in range(3):
            t0 = time.perf_counter()
            for t in texts:
                tok.encode(t, add_special_tokens=False)
            best_single = min(best_single, time.perf_counter() - t0)
            t0 = time.perf_counter()
            tok.encode_batch(texts, add_special_tokens=False)
            best_batch = min(best_batch, time.perf_counter() - t0)
        os.unlink(path)
        print(f"| {name} | {len(texts)} | {mb:.2f} | {ours['mb_per_second']:.2f} | {mb / best_single:.2f} | "
              f"{mb / best_batch:.2f} | {ours['mb_per_second'] / (mb / best_single):.2f}x |")


if __name__ == "__main__":
    main()
