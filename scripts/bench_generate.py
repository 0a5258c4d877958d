"""Benchmark: tokens/s of `anchor-rl generate` vs transformers' `generate`, same checkpoint,
batch, prompt and output lengths, thread count and greedy decoding, measured in one run.

    scripts/bench_generate.py [--batch 16] [--new-tokens 128] [--threads 2] [--hidden 128 --layers 4]

Both sides generate exactly batch x new_tokens tokens (EOS ignored); each is run `--repeat`
times and the best time is kept. Model load time is excluded on both sides.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anchor-rl"))
    args = ap.parse_args()

    model_dir = os.path.join(tempfile.gettempdir(), f"anchor-bench-h{args.hidden}-l{args.layers}")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_tiny_model.py"), model_dir,
                        "--hidden", str(args.hidden), "--layers", str(args.layers), "--heads", "8",
                        "--kv-heads", "4", "--vocab", "1024"], check=True, stdout=subprocess.DEVNULL)
    prompt = "Countdown: reach 24 with 3 5 8. Step:"

    best_anchor = None
    for r in range(args.repeat):
        out = subprocess.run([args.binary, "generate", "--model", model_dir, "--prompt", prompt,
                              "--num-samples", str(args.batch), "--max-new-tokens", str(args.new_tokens),
                              "--greedy", "--ignore-eos", "--threads", str(args.threads), "--bench"],
                             check=True, capture_output=True, text=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["generated_tokens"] == args.batch * args.new_tokens, res
        if best_anchor is None or res["generate_seconds"] < best_anchor:
            best_anchor = res["generate_seconds"]

    torch.set_num_threads(args.threads)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    ids = torch.tensor([[1] + sp.encode(prompt)] * args.batch)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    best_hf = None
    with torch.inference_mode():
        for r in range(args.repeat):
            t0 = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, pad_token_id=0)
            dt = time.perf_counter() - t0
            assert out.shape[1] - ids.shape[1] == args.new_tokens
            best_hf = dt if best_hf is None else min(best_hf, dt)

    tokens = args.batch * args.new_tokens
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: {params:.2f}M params (hidden {args.hidden}, {args.layers} layers, 8 heads / 4 kv), "
          f"batch {args.batch}, prompt {ids.shape[1]} tokens, {args.new_tokens} new tokens, {args.threads} threads, "
          f"torch {torch.__version__}")
    print(f"anchor-rl generate : {tokens / best_anchor:10.1f} tokens/s  ({best_anchor:.3f} s)")
    print(f"transformers       : {tokens / best_hf:10.1f} tokens/s  ({best_hf:.3f} s)")
    print(f"speed-up           : {best_hf / best_anchor:.2f}x")


if __name__ == "__main__":
    main()
