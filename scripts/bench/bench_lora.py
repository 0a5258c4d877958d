"""Benchmark: LoRA against full fine-tuning on SmolLM2-135M-Instruct, in one run (prints numbers).

    scripts/bench/bench_lora.py [--steps 3] [--rank 16] [--config configs/smollm2_multistep.yaml]
                                [--decode-repeat 3] [--skip-train] [--skip-decode]

1. GRPO steps: `anchor-rl train CONFIG` for --steps steps, full fine-tuning and then
   model.lora {rank, alpha 2 x rank, all-linear}, same seed and settings, no evaluation. Step 1
   samples the same rollouts on both sides (fresh adapters leave the model unchanged), so its
   update phases compare equal work; later steps sample from two diverging models. Prints per
   step the seconds of the step and its phases, the peak RSS, and the optimizer's AdamW bytes
   (the run's log line).
2. Decoding with adapters: `anchor-rl generate --bench` of 32 rows x 128 tokens (EOS ignored) on
   the base model, and on the base with random rank --rank all-linear adapters (made with PEFT)
   decoded with the adapters merged into the packed weights or applied beside them
   (--lora-decode), interleaved, best of --decode-repeat.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "build", "anchor-rl")
MODEL = os.path.expanduser("~/.cache/anchor-rl/models/smollm2-135m-instruct")


def train(config, run_dir, steps, extra):
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [BINARY, "train", config, "--run-dir", run_dir, "--skip-start-eval", "--set", f"train.steps={steps}",
           "--set", "data.eval=", "--set", "checkpoint.every=0", "--set", "logging.tensorboard=false"] + extra
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench_lora: {' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    lines = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"perf"' in l]
    log = open(os.path.join(run_dir, "train.log")).read()
    moments = re.search(r"optimizer: AdamW over (\d+) tensors, (\d+) trainable parameters; moments (\d+) bytes", log)
    return lines, (int(moments.group(2)), int(moments.group(3)))


def bench_train(args):
    lora = ["--set", "model.lora.enabled=true", "--set", f"model.lora.rank={args.rank}",
            "--set", f"model.lora.alpha={2 * args.rank}"]
    scratch = tempfile.mkdtemp(prefix="bench_lora_")
    results = {}
    for name, extra in (("full", []), (f"lora r{args.rank}", lora)):
        results[name] = train(args.config, os.path.join(scratch, name.replace(" ", "_")), args.steps, extra)
    print(f"\nGRPO on {args.config}, {args.steps} steps each (seconds; step 1 = same rollouts on both sides)")
    print(f"{'':>10} {'step':>4} {'step s':>7} {'rollout':>8} {'forward':>8} {'backward':>8} {'positions':>9} "
          f"{'peak RSS MiB':>12}")
    for name, (lines, _) in results.items():
        for l in lines:
            p = l["perf"]
            print(f"{name:>10} {l['step']:>4} {p['step_seconds']:>7.1f} {p['rollout_seconds']:>8.1f} "
                  f"{p['forward_seconds']:>8.1f} {p['backward_seconds']:>8.1f} {p['train_positions']:>9} "
                  f"{p['peak_memory_mb']:>12.0f}")
    print("\npeak RSS per phase (MiB), step by step:")
    for name, (lines, _) in results.items():
        for l in lines:
            phases = l["perf"].get("peak_memory_mb_by_phase", {})
            print(f"{name:>10} {l['step']:>4} " + "  ".join(f"{k} {v:.0f}" for k, v in sorted(phases.items())))
    print(f"\n{'':>10} {'trainable':>12} {'AdamW moments':>14} {'median step s':>14} {'update s (step 1)':>18} "
          f"{'peak RSS MiB':>12}")
    for name, (lines, (trainable, moments)) in results.items():
        median = statistics.median(l["perf"]["step_seconds"] for l in lines)
        first = lines[0]["perf"]
        update = first["forward_seconds"] + first["backward_seconds"]
        peak = max(l["perf"]["peak_memory_mb"] for l in lines)
        print(f"{name:>10} {trainable:>12,} {moments / 2**20:>11.1f} MiB {median:>14.1f} {update:>18.1f} {peak:>12.0f}")
    shutil.rmtree(scratch, ignore_errors=True)


def make_adapter(rank, out_dir):
    """Random rank-`rank` all-linear adapters on SmolLM2 (B nonzero, so they change the output)."""
    code = f"""
import json, torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(0)
m = get_peft_model(AutoModelForCausalLM.from_pretrained({MODEL!r}, dtype=torch.float32),
                   LoraConfig(r={rank}, lora_alpha={2 * rank}, target_modules="all-linear"))
with torch.no_grad():
    for n, p in m.named_parameters():
        if p.requires_grad: p.copy_(torch.randn_like(p) * 0.01)
m.save_pretrained({out_dir!r})
c = json.load(open({out_dir!r} + "/adapter_config.json")); c["base_model_name_or_path"] = {MODEL!r}
json.dump(c, open({out_dir!r} + "/adapter_config.json", "w"))
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def bench_decode(args):
    adapter = tempfile.mkdtemp(prefix="bench_lora_adapter_")
    make_adapter(args.rank, adapter)
    common = ["generate", "--bench", "--ignore-eos", "--max-new-tokens", "128", "--num-samples", "32",
              "--prompt", "What is 17 times 23? Explain step by step.", "--seed", "1"]
    variants = {"base model": ["--model", MODEL], "lora merged": ["--model", adapter, "--lora-decode", "merged"],
                "lora applied": ["--model", adapter, "--lora-decode", "applied"]}
    best = {}
    for _ in range(args.decode_repeat):
        for name, extra in variants.items():
            out = subprocess.run([BINARY] + common + extra, cwd=ROOT, capture_output=True, text=True, check=True)
            tps = json.loads(out.stdout.strip().splitlines()[-1])["tokens_per_second"]
            best[name] = max(best.get(name, 0.0), tps)
    print(f"\nDecoding 32 rows x 128 new tokens, rank {args.rank} all-linear adapters (best of {args.decode_repeat}):")
    for name, tps in best.items():
        print(f"  {name:>13}: {tps:7.0f} tokens/s ({tps / best['base model']:.2f} x base)")
    shutil.rmtree(adapter, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--config", default="configs/smollm2_multistep.yaml")
    parser.add_argument("--decode-repeat", type=int, default=3)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-decode", action="store_true")
    args = parser.parse_args()
    if not args.skip_decode:
        bench_decode(args)
    if not args.skip_train:
        bench_train(args)


if __name__ == "__main__":
    main()
