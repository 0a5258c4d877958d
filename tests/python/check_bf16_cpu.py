"""The mixed-precision training path (fp32 master weights, bf16 compute under autocast: what
model.dtype=bfloat16 does on a GPU) run on this CPU, which has no bf16 hardware, behind the
test-only switch ANCHOR_TEST_CPU_BF16=1 (emulated: ~7x slower, same code path).

3 GRPO steps of the demo config (8 prompts x 8 samples) in bf16 and in fp32, same seed; a second
fp32 run with another seed measures how far sampling noise alone moves the update. Checked:
- bf16 compute happened: the sampler's and the training forward's log-probs differ by more
  than fp32's rounding (logprob_mismatch > 1e-5; fp32 gives ~3e-7) and less than 1e-2;
- the update tracks fp32: the weight change after 3 steps has a norm within 20% of fp32's, and
  its cosine with fp32's change is >= 0.25 and at least twice the cosine between two fp32 runs
  with different seeds (bf16 rounding changes some sampled tokens, so the batches differ);
- master weights stay fp32: the checkpoint's model.safetensors and AdamW moments are float32
  and its config.json says float32 (the dtype the run keeps its weights in);
- without the switch, model.dtype=bfloat16 on this CPU is refused with the reason.
Usage: check_bf16_cpu.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = ["--skip-start-eval", "--set", "train.steps=3", "--set", "rollout.prompts_per_step=8",
            "--set", "data.eval_limit=8", "--set", "train.eval_every=0", "--set", "logging.tensorboard=false",
            "--set", "checkpoint.every=3", "--set", "model.threads=2"]


def train(binary, run_dir, dtype, seed, switch=True, expect_ok=True):
    env = dict(os.environ)
    env.pop("ANCHOR_TEST_CPU_BF16", None)
    if switch:
        env["ANCHOR_TEST_CPU_BF16"] = "1"
    cmd = [binary, "train", "configs/demo.yaml", "--run-dir", run_dir, "--set", f"model.dtype={dtype}",
           "--set", f"train.seed={seed}"] + SETTINGS
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    if expect_ok and out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {out.returncode}")
    return out


def step_metrics(run_dir):
    return [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"perf"' in l]


def main():
    import numpy as np
    from safetensors.numpy import load_file
    binary, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    runs = {name: os.path.join(scratch, name) for name in ("fp32", "bf16", "fp32-seed1")}
    train(binary, runs["fp32"], "float32", 0)
    train(binary, runs["bf16"], "bfloat16", 0)
    train(binary, runs["fp32-seed1"], "float32", 1)

    start = load_file(os.path.join(ROOT, "data", "demo-model", "model.safetensors"))
    ckpt = lambda r: os.path.join(runs[r], "checkpoints", "step-00000003")
    def change(r):
        w = load_file(os.path.join(ckpt(r), "model.safetensors"))
        bad = sorted(k for k, v in w.items() if v.dtype != np.float32)
        if bad:
            raise SystemExit(f"FAIL: {r}: checkpoint weights not float32: {bad[:3]}")
        return np.concatenate([(w[k].astype(np.float64) - start[k].astype(np.float64)).ravel() for k in sorted(start)])
    fp32, bf16, seed1 = change("fp32"), change("bf16"), change("fp32-seed1")
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    norm_ratio = float(np.linalg.norm(bf16) / np.linalg.norm(fp32))
    c_bf16, c_seed = cos(fp32, bf16), cos(fp32, seed1)
    mismatch = {r: max(m["logprob_mismatch"] for m in step_metrics(runs[r])) for r in ("fp32", "bf16")}
    print(f"3 GRPO steps, bf16 vs fp32 (same seed): update norm ratio {norm_ratio:.3f}, cosine {c_bf16:.3f}; "
          f"fp32 seed 0 vs seed 1: cosine {c_seed:.3f}; logprob mismatch bf16 {mismatch['bf16']:.2e}, "
          f"fp32 {mismatch['fp32']:.2e}")
    if not 1e-5 < mismatch["bf16"] < 1e-2:
        raise SystemExit(f"FAIL: bf16 logprob mismatch {mismatch['bf16']:.3g}: expected bf16 rounding (1e-5 .. 1e-2)")
    if not 0.8 <= norm_ratio <= 1.2:
        raise SystemExit(f"FAIL: the bf16 update's norm is {norm_ratio:.3f} of fp32's (expected 0.8 .. 1.2)")
    if not (c_bf16 >= 0.25 and c_bf16 >= 2 * c_seed):
        raise SystemExit(f"FAIL: the bf16 update's cosine with fp32's is {c_bf16:.3f} (seed noise: {c_seed:.3f})")
    moments = load_file(os.path.join(ckpt("bf16"), "trainer_state.safetensors"))
    bad = sorted(k for k, v in moments.items() if k.endswith(("exp_avg", "exp_avg_sq")) and v.dtype != np.float32)
    if bad:
        raise SystemExit(f"FAIL: AdamW moments not float32: {bad[:3]}")
    config = json.load(open(os.path.join(ckpt("bf16"), "config.json")))
    if config.get("torch_dtype") != "float32":
        raise SystemExit(f"FAIL: the bf16 run's checkpoint config.json says {config.get('torch_dtype')}")
    refused = train(binary, os.path.join(scratch, "refused"), "bfloat16", 0, switch=False, expect_ok=False)
    if refused.returncode == 0 or "bfloat16 on this CPU would be several times slower" not in refused.stderr:
        if "avx512_bf16" not in open("/proc/cpuinfo").read() and "amx_bf16" not in open("/proc/cpuinfo").read():
            raise SystemExit("FAIL: model.dtype=bfloat16 without the test switch was not refused:\n" + refused.stderr[-2000:])
    print("bf16 path: master weights and AdamW moments float32 in the checkpoint; refused without the switch")


if __name__ == "__main__":
    main()
