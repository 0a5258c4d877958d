"""Non-finite values never reach the weights (reliability issue, item 4).

A NaN put into a gradient (step 2) or into the rewards (step 3) by the test-only hook
ANCHOR_TEST_POISON skips that step's optimizer update: the metrics line says where
("skipped": "gradients" / "reward"), skipped_steps counts it, the run goes on with finite
weights, and stopping after the poisoned step and resuming gives the same final weights,
optimizer state and metrics as the straight run. Poison at every step from step 2 on stops the
run after train.max_consecutive_skips (3) skipped steps with an error, exit 1, and the newest
checkpoint holds finite weights.
Usage: check_nonfinite.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from run_files import checkpoint_bytes, metrics  # noqa: E402
SMALL = ["--set", "train.steps=4", "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
         "--set", "algo.micro_batch_size=8", "--set", "data.eval=", "--set", "checkpoint.every=1",
         "--set", "algo.dynamic_sampling=false"]


def train(binary, run_dir, poison, extra=(), expect=0):
    env = dict(os.environ, ANCHOR_TEST_POISON=poison)
    out = subprocess.run([binary, "train", "configs/demo.yaml", "--run-dir", run_dir] + SMALL + list(extra),
                         cwd=ROOT, capture_output=True, text=True, env=env)
    if out.returncode != expect:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"FAIL: poison {poison}: exit {out.returncode}, expected {expect}")
    return out.stdout + out.stderr


def weights_finite(run_dir, step):
    import numpy as np
    from safetensors.numpy import load_file
    w = load_file(os.path.join(run_dir, "checkpoints", f"step-{step:08d}", "model.safetensors"))
    return all(np.isfinite(v).all() for v in w.values())


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    for poison, step, stage in (("2:gradient", 2, "gradients"), ("3:reward", 3, "reward")):
        straight, resumed = os.path.join(scratch, f"{stage}-straight"), os.path.join(scratch, f"{stage}-resumed")
        for d in (straight, resumed):
            shutil.rmtree(d, ignore_errors=True)
        text = train(binary, straight, poison)
        m = {l["step"]: l for l in metrics(straight)}
        if m[step].get("skipped") != stage or m[step]["optimizer_updates"] != 0:
            raise SystemExit(f"FAIL: poison {poison}: step {step} should be skipped in the {stage}: {m[step]}")
        if m[4]["skipped_steps"] != 1 or "skipped" in m[4] or m[4]["optimizer_updates"] != 1:
            raise SystemExit(f"FAIL: poison {poison}: the run should go on after the skip: {m[4]}")
        if f"non-finite value in the {stage}" not in text:
            raise SystemExit(f"FAIL: poison {poison}: no log line naming the stage\n{text[-2000:]}")
        if not weights_finite(straight, 4):
            raise SystemExit(f"FAIL: poison {poison}: non-finite weights after the run")
        train(binary, resumed, poison, ["--stop-after-step", str(step)])
        train(binary, resumed, poison, ["--resume", "latest"])
        if metrics(straight) != metrics(resumed) or checkpoint_bytes(straight, 4) != checkpoint_bytes(resumed, 4):
            raise SystemExit(f"FAIL: poison {poison}: resuming after the skipped step differs from the straight run")
        print(f"NaN in the {stage} at step {step}: step skipped, run finished with finite weights, resume exact")
    run_dir = os.path.join(scratch, "every-step")
    shutil.rmtree(run_dir, ignore_errors=True)
    text = train(binary, run_dir, "2+:gradient", ["--set", "train.steps=8"], expect=1)
    if "3 consecutive steps with non-finite values" not in text:
        raise SystemExit(f"FAIL: poison at every step: no stop message\n{text[-2000:]}")
    last = metrics(run_dir)[-1]
    with open(os.path.join(run_dir, "checkpoints", "latest")) as f:
        latest = f.read().strip()
    latest_step = int(latest.rsplit("-", 1)[1])
    if last["step"] != 4 or latest_step != 3 or not weights_finite(run_dir, latest_step):
        raise SystemExit(f"FAIL: poison at every step: stopped at step {last['step']}, latest checkpoint {latest}")
    print("NaN in every step from step 2: stopped after 3 skipped steps (step 4), exit 1, "
          f"checkpoint step {latest_step} finite")

    # `anchor-rl sft` skips the same way, and resumes exactly.
    sft = ["sft", "configs/demo_sft.yaml", "--set", "train.steps=4", "--set", "sft.batch_size=8", "--set", "data.eval=",
           "--set", "model.path=data/demo-model", "--set", "checkpoint.every=1"]
    env = dict(os.environ, ANCHOR_TEST_POISON="2:gradient")
    straight, resumed = os.path.join(scratch, "sft-straight"), os.path.join(scratch, "sft-resumed")
    for d in (straight, resumed):
        shutil.rmtree(d, ignore_errors=True)
    for run_dir, extra in ((straight, []), (resumed, ["--stop-after-step", "2"]), (resumed, ["--resume", "latest"])):
        subprocess.run([binary] + sft + ["--run-dir", run_dir] + extra, cwd=ROOT, check=True, capture_output=True,
                       env=env)
    m = {l["step"]: l for l in metrics(straight)}
    if m[2].get("skipped") != "gradients" or m[4]["skipped_steps"] != 1 or "skipped" in m[4]:
        raise SystemExit(f"FAIL: sft: step 2 should be skipped and the run go on: {m[2]} {m[4]}")
    if not weights_finite(straight, 4) or metrics(straight) != metrics(resumed) or checkpoint_bytes(straight, 4) != checkpoint_bytes(resumed, 4):
        raise SystemExit("FAIL: sft: non-finite weights, or resuming after the skipped step differs")
    print("sft: NaN in a gradient at step 2: step skipped, finite weights, resume exact")


if __name__ == "__main__":
    main()
