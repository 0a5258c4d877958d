"""Benchmark: tokens/s and peak RSS of `anchor-rl generate` vs transformers' `generate`, on the
demo model and on SmolLM2-135M-Instruct, side by side in one run, with this machine's fp32
matmul peak and memory bandwidth measured in the same run and the share of that bound reached.

    scripts/bench/bench_generate.py [--batches 16,64] [--new-tokens 128] [--threads 2] [--repeat 3]
                              [--models demo,smollm2] [--modes greedy,sample]

Each measurement runs in its own process (peak RSS is that process's), same prompt (the chat
prompt of the model's template), same batch (one prompt repeated, as RL groups are), exactly
batch x new_tokens tokens (EOS ignored), same thread count; best of --repeat. Model loading is
excluded from tokens/s. "sample" draws at temperature 1 (RL rollouts), "greedy" takes argmax.
Bound per decode step = max(2 * params * batch / peak FLOP/s, weight bytes / bandwidth); the
share is that bound over the measured time per generated step.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPT = "Tell me about the history of France."


def machine_bounds(threads):
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    flops = 10 * 2 * 2048 ** 3 / (time.perf_counter() - t0)
    x = torch.empty(64 * 2 ** 20)
    y = torch.empty_like(x)
    y.copy_(x)
    t0 = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    bandwidth = 10 * 2 * x.numel() * 4 / (time.perf_counter() - t0)  # read + write
    return flops, bandwidth


def peak_rss_mb():
    """VmHWM of this process (ru_maxrss survives exec and may be the parent's)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hf_worker(args):
    """Runs in a child process: transformers generate, prints one JSON line."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(args.threads)
    if os.path.exists(os.path.join(args.model_dir, "tokenizer.json")):
        tok = AutoTokenizer.from_pretrained(args.model_dir)
        text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
        pad = tok.pad_token_id or 0
    else:  # the demo model's SentencePiece tokenizer: BOS + the prompt, as anchor-rl encodes it
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=os.path.join(args.model_dir, "tokenizer.model"))
        ids = torch.tensor([[sp.bos_id()] + sp.encode(PROMPT)])
        pad = 0
    ids = ids.repeat(args.batch, 1)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    kwargs = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0) if args.mode == "sample" else dict(do_sample=False)
    with torch.inference_mode():
        torch.manual_seed(0)
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens,
                             min_new_tokens=args.new_tokens, pad_token_id=pad, **kwargs)
        dt = time.perf_counter() - t0
    assert out.shape[1] - ids.shape[1] == args.new_tokens
    print(json.dumps({"seconds": dt, "params": sum(p.numel() for p in model.parameters()), "rss_mb": peak_rss_mb()}))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--models", default="demo,smollm2")
    ap.add_argument("--modes", default="greedy,sample")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anchor-rl"))
    ap.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hf_worker:
        return hf_worker(args)

    models = {"demo": os.path.join(ROOT, "data", "demo-model")}
    if "smollm2" in args.models:
        models["smollm2"] = subprocess.run([os.path.join(ROOT, "scripts", "setup", "get_model.sh"), "smollm2-135m-instruct"],
                                           check=True, capture_output=True, text=True).stdout.strip()
    flops, bandwidth = machine_bounds(args.threads)
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine ({args.threads} threads): fp32 matmul {flops / 1e9:.0f} GFLOP/s, copy bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s (read + write)")
    print("| model | mode | batch | anchor-rl tokens/s | transformers tokens/s | speed-up | anchor-rl share of bound "
          "| anchor-rl peak RSS | transformers peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model_dir = models[name]
        for mode in args.modes.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                tokens = batch * args.new_tokens
                ours = min((run([args.binary, "generate", "--model", model_dir, "--prompt", PROMPT, "--num-samples",
                                 str(batch), "--max-new-tokens", str(args.new_tokens), "--ignore-eos", "--threads",
                                 str(args.threads), "--bench", "--seed", "0"] +
                                (["--chat"] if name != "demo" else []) + (["--greedy"] if mode == "greedy" else []))
                            for _ in range(args.repeat)), key=lambda r: r["generate_seconds"])
                assert ours["generated_tokens"] == tokens, ours
                hf = min((run([sys.executable, __file__, "--hf-worker", "--model-dir", model_dir, "--batch", str(batch),
                               "--mode", mode, "--new-tokens", str(args.new_tokens), "--threads", str(args.threads)])
                          for _ in range(args.repeat)), key=lambda r: r["seconds"])
                params = hf["params"]
                bound_step = max(2 * params * batch / flops, params * 4 / bandwidth)
                share = bound_step * args.new_tokens / ours["generate_seconds"]
                print(f"| {name} ({params / 1e6:.1f}M) | {mode} | {batch} | {tokens / ours['generate_seconds']:.0f} | "
                      f"{tokens / hf['seconds']:.0f} | {hf['seconds'] / ours['generate_seconds']:.2f}x | {100 * share:.0f}% | "
                      f"{ours['peak_rss_mb']:.0f} MB | {hf['rss_mb']:.0f} MB |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
