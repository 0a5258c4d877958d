"""SIGTERM / SIGINT (what schedulers send before a kill) stop a run cleanly (reliability issue,
item 5): the first signal finishes the current step, writes a checkpoint and exits 0; resuming
from it ends exactly where an uninterrupted run ends (weights, optimizer state, metrics). A
second signal exits at once (exit 128 + signal).
Usage: check_stop_signal.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from run_files import checkpoint_bytes, metrics  # noqa: E402
ARGS = ["train", "configs/demo.yaml", "--set", "train.steps=16", "--set", "rollout.prompts_per_step=4",
        "--set", "rollout.samples_per_prompt=4", "--set", "algo.micro_batch_size=8", "--set", "data.eval=",
        "--set", "checkpoint.every=0", "--set", "algo.dynamic_sampling=false"]
SFT_STEPS = 200  # SFT steps of the demo model are short: enough of them that the signal lands mid-run
SFT_ARGS = ["sft", "configs/demo_sft.yaml", "--set", f"train.steps={SFT_STEPS}", "--set", "sft.batch_size=8",
            "--set", "data.eval=", "--set", "model.path=data/demo-model", "--set", "checkpoint.every=0"]


def start_and_signal(binary, run_dir, signals, args=ARGS):
    proc = subprocess.Popen([binary] + args + ["--run-dir", run_dir], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(l.get("step", 0) >= 2 for l in metrics(run_dir)):
        time.sleep(0.05)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.02)
    t0 = time.time()
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err, time.time() - t0


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    straight, stopped, twice = (os.path.join(scratch, n) for n in ("straight", "stopped", "twice"))
    for d in (straight, stopped, twice):
        shutil.rmtree(d, ignore_errors=True)
    subprocess.run([binary] + ARGS + ["--run-dir", straight], cwd=ROOT, check=True, capture_output=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        shutil.rmtree(stopped, ignore_errors=True)
        code, text, seconds = start_and_signal(binary, stopped, [sig])
        if code != 0 or "stop requested" not in text or "stopped after step" not in text:
            raise SystemExit(f"FAIL: {sig.name}: exit {code}\n{text[-3000:]}")
        with open(os.path.join(stopped, "checkpoints", "latest")) as f:
            step = int(f.read().strip().rsplit("-", 1)[1])
        if not 2 <= step < 16:
            raise SystemExit(f"FAIL: {sig.name}: checkpoint at step {step}")
        subprocess.run([binary] + ARGS + ["--run-dir", stopped, "--resume", "latest"], cwd=ROOT, check=True,
                       capture_output=True)
        if checkpoint_bytes(straight, 16) != checkpoint_bytes(stopped, 16) or metrics(straight) != metrics(stopped):
            raise SystemExit(f"FAIL: {sig.name}: stop at step {step} + resume differs from the straight run")
        print(f"{sig.name}: exit 0 {seconds:.1f} s after the signal, checkpoint at step {step}, resume exact")
    code, text, seconds = start_and_signal(binary, twice, [signal.SIGTERM, signal.SIGTERM])
    if code != 128 + signal.SIGTERM or "second stop signal" not in text:
        raise SystemExit(f"FAIL: second SIGTERM: exit {code}\n{text[-3000:]}")
    print(f"second SIGTERM: exit {code} after {seconds:.2f} s, no checkpoint")

    # `anchor-rl sft` stops the same way.
    sft_straight, sft_stopped = os.path.join(scratch, "sft-straight"), os.path.join(scratch, "sft-stopped")
    for d in (sft_straight, sft_stopped):
        shutil.rmtree(d, ignore_errors=True)
    subprocess.run([binary] + SFT_ARGS + ["--run-dir", sft_straight], cwd=ROOT, check=True, capture_output=True)
    code, text, seconds = start_and_signal(binary, sft_stopped, [signal.SIGTERM], SFT_ARGS)
    if code != 0 or "stopped after step" not in text:
        raise SystemExit(f"FAIL: sft SIGTERM: exit {code}\n{text[-3000:]}")
    with open(os.path.join(sft_stopped, "checkpoints", "latest")) as f:
        step = int(f.read().strip().rsplit("-", 1)[1])
    subprocess.run([binary] + SFT_ARGS + ["--run-dir", sft_stopped, "--resume", "latest"], cwd=ROOT, check=True,
                   capture_output=True)
    if checkpoint_bytes(sft_straight, SFT_STEPS) != checkpoint_bytes(sft_stopped, SFT_STEPS) or metrics(sft_straight) != metrics(sft_stopped):
        raise SystemExit(f"FAIL: sft: stop at step {step} + resume differs from the straight run")
    print(f"sft SIGTERM: exit 0 {seconds:.1f} s after the signal, checkpoint at step {step}, resume exact")


if __name__ == "__main__":
    main()
