"""Benchmark: seconds per GRPO step and peak RSS of `anchor-rl train` vs TRL's GRPOTrainer, on the
demo model and on SmolLM2-135M-Instruct, side by side in one run, plus the GFLOP/s the training
forward + backward of anchor-rl reaches as a share of this machine's fp32 matmul peak (measured
in the same run).

    scripts/bench/bench_grpo_step.py [--models demo,smollm2] [--steps 3] [--threads 2] [--no-trl]

Same settings on both sides: model, prompts, group size, token budget (generation runs until
EOS or the budget on both sides: no stop strings), temperature 1, loss token_mean ("dapo"),
clip 0.2 / 0.28, one epoch, one mini-batch (fully on-policy: both skip the old-log-prob
forward), beta 0 (no reference model), same micro-batch, fp32 on CPU, same thread count.
    demo:    32 prompts x 8 samples, 48 new tokens, micro-batch 128 (the demo's settings)
    smollm2: 8 prompts x 8 samples, 128 new tokens, micro-batch 16, chat template
The first step of each side is a warm-up; the table shows the median of the others (with
--steps 1 the only one). TRL runs in its own environment (TRL is not a dependency of
anchor-rl): --trl-python, default ~/.cache/anchor-rl/bench-venv/bin/python, made on first use as
a venv that sees the project's packages plus trl, datasets and protobuf.
Training GFLOP/s = 3 x forward FLOPs (matmuls over every padded position plus causal attention)
over forward + backward seconds; the backward seconds include clipping and the optimizer step,
so the share is a lower bound.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "bench"))
from bench_generate import machine_bounds  # noqa: E402

SETTINGS = {
    "demo": dict(data="data/countdown/train.jsonl", prompts=32, samples=8, max_new_tokens=48, micro=128, chat=False),
    "smollm2": dict(data="data/arithmetic/train.jsonl", prompts=8, samples=8, max_new_tokens=128, micro=16, chat=True),
}


def anchor_config(model_dir, s, steps, run_dir, threads):
    template = "  template: auto\n" if s["chat"] else ""
    return f"""model:
  path: {model_dir}
  device: cpu
  threads: {threads}
data:
  train: {os.path.join(ROOT, s['data'])}
{template}rollout:
  prompts_per_step: {s['prompts']}
  samples_per_prompt: {s['samples']}
  max_new_tokens: {s['max_new_tokens']}
  temperature: 1.0
reward:
  components:
    - name: {'math_answer' if s['chat'] else 'countdown'}
      weight: 1.0
algo:
  advantage: grpo
  loss_agg: token_mean
  clip_low: 0.2
  clip_high: 0.28
  micro_batch_size: {s['micro']}
optim:
  lr: 1.0e-6
  grad_clip: 1.0
train:
  steps: {steps}
  seed: 0
logging:
  run_dir: {run_dir}
  progress: false
"""


def matmul_flops_per_position(model_dir):
    c = json.load(open(os.path.join(model_dir, "config.json")))
    h, L, inter, vocab = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
    nq = c["num_attention_heads"]
    hd = c.get("head_dim") or h // nq
    nkv = c.get("num_key_value_heads", nq)
    per_layer = h * nq * hd + 2 * h * nkv * hd + nq * hd * h + 3 * h * inter
    return 2 * (L * per_layer + h * vocab), 2 * 2 * L * nq * hd  # matmuls, attention per (query, key) pair


def run_anchor(binary, model_dir, s, steps, threads):
    with tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
        cfg = os.path.join(tmp, "bench.yaml")
        open(cfg, "w").write(anchor_config(model_dir, s, steps, os.path.join(tmp, "run"), threads))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([binary, "train", cfg], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines = [json.loads(l) for l in open(os.path.join(tmp, "run", "metrics.jsonl"))]
    return [l for l in lines if "perf" in l]


def ensure_trl_python(path):
    if os.path.exists(path):
        return path
    venv = os.path.dirname(os.path.dirname(path))
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    site = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    own = subprocess.run([path, "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                         capture_output=True, text=True).stdout.strip()
    open(os.path.join(own, "anchor_rl_project.pth"), "w").write(site + "\n")
    subprocess.run([path, "-m", "pip", "install", "-q", "trl==1.16.0", "datasets", "protobuf"], check=True)
    return path


def run_trl(python, model_dir, s, steps, threads):
    cmd = [python, os.path.join(ROOT, "scripts", "bench", "bench_grpo_trl.py"), "--model", model_dir, "--data",
           os.path.join(ROOT, s["data"]), "--prompts", str(s["prompts"]), "--samples", str(s["samples"]),
           "--max-new-tokens", str(s["max_new_tokens"]), "--micro-batch", str(s["micro"]), "--steps", str(steps),
           "--threads", str(threads)]
    if not s["chat"]:
        cmd.append("--plain")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def typical(values):
    rest = values[1:] if len(values) > 1 else values
    return statistics.median(rest)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="demo,smollm2")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anchor-rl"))
    ap.add_argument("--trl-python", default=os.path.expanduser("~/.cache/anchor-rl/bench-venv/bin/python"))
    ap.add_argument("--no-trl", action="store_true")
    args = ap.parse_args()

    print(f"command: {' '.join(sys.argv)}")
    flops, _ = machine_bounds(args.threads)
    print(f"machine ({args.threads} threads): fp32 matmul {flops / 1e9:.0f} GFLOP/s")
    trl_python = None if args.no_trl else ensure_trl_python(args.trl_python)
    print("| model | anchor-rl s/step (rollout / fwd / bwd+opt) | TRL s/step | speed-up | tokens per completion "
          "(anchor-rl / TRL) | training GFLOP/s (share of peak) | peak RSS anchor-rl / TRL |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        s = SETTINGS[name]
        model_dir = (os.path.join(ROOT, "data", "demo-model") if name == "demo" else
                     subprocess.run([os.path.join(ROOT, "scripts", "setup", "get_model.sh"), "smollm2-135m-instruct"],
                                    check=True, capture_output=True, text=True).stdout.strip())
        lines = run_anchor(args.binary, model_dir, s, args.steps, args.threads)
        perf = [l["perf"] for l in lines]
        step = typical([p["step_seconds"] for p in perf])
        rollout = typical([p["rollout_seconds"] for p in perf])
        fwd = typical([p["forward_seconds"] for p in perf])
        bwd = typical([p["backward_seconds"] for p in perf])
        positions = typical([p["train_positions"] for p in perf])
        rows = s["prompts"] * s["samples"]
        per_pos, attn = matmul_flops_per_position(model_dir)
        width = positions / rows
        forward_flops = positions * per_pos + rows * attn * width * (width + 1) / 2
        train_gflops = 3 * forward_flops / (fwd + bwd) / 1e9
        rss = max(p["peak_memory_mb"] for p in perf)
        ours_len = typical([l["response_length"] for l in lines])
        if trl_python:
            trl = run_trl(trl_python, model_dir, s, args.steps, args.threads)
            trl_step = typical(trl["step_seconds"])
            trl_len = typical(trl["generated_tokens"]) / rows
            ratio = f"{trl_step / step:.2f}x"
            trl_cols = (f"{trl_step:.2f}", f"{ours_len:.0f} / {trl_len:.0f}", f"{rss:.0f} / {trl['peak_rss_mb']:.0f} MB")
        else:
            ratio, trl_cols = "-", ("-", f"{ours_len:.0f} / -", f"{rss:.0f} / - MB")
        print(f"| {name} | {step:.2f} ({rollout:.2f} / {fwd:.2f} / {bwd:.2f}) | {trl_cols[0]} | {ratio} | {trl_cols[1]} | "
              f"{train_gflops:.0f} ({100 * train_gflops * 1e9 / flops:.0f}%) | {trl_cols[2]} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
