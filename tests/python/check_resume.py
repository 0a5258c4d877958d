"""Exact resume: N steps straight == N/2 steps, an interruption, and --resume latest for the rest.

Runs `anchor-rl train` (and `anchor-rl sft`) on the shipped demo model and countdown data
twice; the final weights and optimizer state must be bit-identical and every metrics line
identical once the wall-clock timings under "perf" are removed.
Usage: check_resume.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(binary, args):
    out = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"FAIL: anchor-rl {' '.join(args)} exited with {out.returncode}")


def metrics(run_dir):
    lines = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            d.pop("perf", None)
            lines.append(d)
    return lines


def final_files(run_dir, step):
    ckpt = os.path.join(run_dir, "checkpoints", f"step-{step:08d}")
    out = {}
    for name in ("model.safetensors", "trainer_state.safetensors", "trainer_state.json"):
        with open(os.path.join(ckpt, name), "rb") as f:
            out[name] = f.read()
    return out


def check(binary, scratch, command, config, steps, extra):
    straight, resumed = os.path.join(scratch, command + "-straight"), os.path.join(scratch, command + "-resumed")
    for d in (straight, resumed):
        shutil.rmtree(d, ignore_errors=True)
    common = [command, config, "--set", f"train.steps={steps}"] + extra
    run(binary, common + ["--run-dir", straight])
    run(binary, common + ["--run-dir", resumed, "--stop-after-step", str(steps // 2)])
    run(binary, common + ["--run-dir", resumed, "--resume", "latest"])
    a, b = metrics(straight), metrics(resumed)
    if a != b:
        for x, y in zip(a, b):
            if x != y:
                print("straight:", x, "\nresumed: ", y)
                break
        raise SystemExit(f"FAIL: {command}: metrics differ between the straight and the resumed run")
    fa, fb = final_files(straight, steps), final_files(resumed, steps)
    for name in fa:
        if fa[name] != fb[name]:
            raise SystemExit(f"FAIL: {command}: {name} of step {steps} differs after resume")
    print(f"{command}: {steps} straight steps == {steps // 2} + resume: {len(a)} metrics lines and final "
          f"weights/optimizer identical")


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    small = ["--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
             "--set", "algo.micro_batch_size=6", "--set", "data.eval_limit=4", "--set", "train.eval_every=2",
             "--set", "checkpoint.every=0", "--set", "optim.warmup_steps=1", "--set", "optim.schedule=cosine"]
    check(binary, scratch, "train", "configs/demo.yaml", 4, small)
    sft = ["--set", "sft.batch_size=8", "--set", "data.eval_limit=2", "--set", "train.eval_every=3",
           "--set", "model.path=data/demo-model", "--set", "checkpoint.every=0"]
    check(binary, scratch, "sft", "configs/demo_sft.yaml", 6, sft)


if __name__ == "__main__":
    main()
