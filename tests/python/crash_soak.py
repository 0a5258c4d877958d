#!/usr/bin/env python3
"""Crash soak: SIGKILL a training run at random moments, resume each time, compare with a
run that was never interrupted.

    tests/python/crash_soak.py build/anchor-rl --kills 20 --mid-checkpoint 7 --steps 12 --seed 0

1. An uninterrupted reference run (the demo config, `--steps` steps, a checkpoint every step).
2. The soak run: each attempt starts (or, once a checkpoint exists, resumes with
   `--resume latest`) and is SIGKILLed -- `--mid-checkpoint` of the kills land inside
   save_checkpoint (the test-only hook ANCHOR_TEST_CHECKPOINT_FAULT pauses the writer at a
   named point -- after the model files, after the optimizer state, before the manifest,
   before DONE, before the rename, before `latest`, before pruning -- and this script kills it
   there), the others at a random time. A kill before the first checkpoint starts the run anew.
   After the last kill the run goes to the end.
3. The final checkpoint's weights, optimizer state and trainer state must be identical byte
   for byte, and the metrics lines equal (timings aside); no temporary directory may be left.

Prints "N/N kills survived, M of them mid-checkpoint" and exits 0, or names what differed.
Standard library only.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from run_files import checkpoint_bytes, first_difference, metrics  # noqa: E402
POINTS = ["model", "optimizer", "manifest", "done", "rename", "latest", "prune"]


def common_args(args, run_dir):
    return ["train", args.config, "--run-dir", run_dir, "--set", f"train.steps={args.steps}",
            "--set", "checkpoint.every=1", "--set", "checkpoint.keep_last=2", "--set", "data.eval=",
            "--set", f"rollout.prompts_per_step={args.prompts}"] + args.extra


def checkpoints(run_dir):
    d = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if n.startswith("step-") and os.path.exists(os.path.join(d, n, "DONE")))


def leftovers(run_dir):
    d = os.path.join(run_dir, "checkpoints")
    return [n for n in os.listdir(d) if n.startswith(".tmp-") or n.startswith(".trash-")] if os.path.isdir(d) else []


def run_attempt(args, run_dir, log_path, kill):
    """Starts one attempt; kill = None (run to the end), ("time", seconds) or ("hook", point,
    step). Returns "finished", "killed" or "exited-before-kill"."""
    cmd = [args.binary] + common_args(args, run_dir)
    if checkpoints(run_dir):
        cmd += ["--resume", "latest"]
    elif os.path.exists(run_dir):
        shutil.rmtree(run_dir)  # killed before the first checkpoint: nothing to resume
    env = dict(os.environ)
    env.pop("ANCHOR_TEST_CHECKPOINT_FAULT", None)
    if kill and kill[0] == "hook":
        env["ANCHOR_TEST_CHECKPOINT_FAULT"] = f"{kill[1]}@{kill[2]}:pause"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        start = time.monotonic()
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            if elapsed > args.attempt_timeout:
                proc.kill()
                proc.wait()
                raise SystemExit(f"FAIL: an attempt ran longer than {args.attempt_timeout} s (hung?); log {log_path}")
            if kill and kill[0] == "time" and elapsed >= kill[1]:
                break
            if kill and kill[0] == "hook":
                with open(log_path) as f:
                    if "test hook: checkpoint of step" in f.read():
                        break
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "killed"
    if proc.returncode != 0:
        with open(log_path) as f:
            sys.stderr.write(f.read()[-4000:])
        raise SystemExit(f"FAIL: an attempt exited with {proc.returncode} (not killed by this script): {' '.join(cmd)}")
    return "finished" if kill is None else "exited-before-kill"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--mid-checkpoint", type=int, default=7, help="kills that land inside save_checkpoint")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--prompts", type=int, default=16, help="rollout.prompts_per_step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--work", default=os.path.join(ROOT, "runs", "crash_soak"))
    p.add_argument("--attempt-timeout", type=float, default=600)
    p.add_argument("--set", dest="extra", action="append", default=[], help="extra config override KEY=VALUE")
    args = p.parse_args()
    args.binary = os.path.abspath(args.binary)
    args.extra = [x for kv in args.extra for x in ("--set", kv)]
    assert 0 <= args.mid_checkpoint <= args.kills
    rng = random.Random(args.seed)
    os.makedirs(args.work, exist_ok=True)
    straight, soak = os.path.join(args.work, "straight"), os.path.join(args.work, "soak")
    for d in (straight, soak):
        shutil.rmtree(d, ignore_errors=True)

    t0 = time.monotonic()
    run_attempt(args, straight, os.path.join(args.work, "straight.log"), None)
    straight_seconds = time.monotonic() - t0
    # Random kill times span start-up and about a step or two, so kills land anywhere in a step.
    max_delay = min(straight_seconds, 1.0 + 2.0 * straight_seconds / args.steps)

    kinds = ["hook"] * args.mid_checkpoint + ["time"] * (args.kills - args.mid_checkpoint)
    rng.shuffle(kinds)
    points = POINTS[:]
    rng.shuffle(points)
    hook_points = [points[i % len(points)] for i in range(args.mid_checkpoint)]  # all points once M >= 7
    killed, mid_checkpoint, timed_mid_write, attempts = 0, 0, 0, 0
    at_points = []
    for kind in kinds:
        done = checkpoints(soak)
        latest = int(done[-1][5:]) if done else 0
        if latest >= args.steps:
            break
        if kind == "hook":
            point = hook_points.pop()
            kill = ("hook", point, latest + 1)
        else:
            kill = ("time", rng.uniform(0.05, max_delay))
        attempts += 1
        outcome = run_attempt(args, soak, os.path.join(args.work, f"attempt-{attempts:02d}.log"), kill)
        if outcome != "killed":
            continue
        killed += 1
        if kind == "hook":
            mid_checkpoint += 1
            at_points.append(kill[1])
        elif leftovers(soak):
            timed_mid_write += 1  # a random kill that happened to land inside a checkpoint write
            mid_checkpoint += 1
    attempts += 1
    run_attempt(args, soak, os.path.join(args.work, f"attempt-{attempts:02d}.log"), None)

    a, b = metrics(straight), metrics(soak)
    if a != b:
        x, y = first_difference(a, b)
        print("uninterrupted:", x, "\nsoaked:       ", y)
        raise SystemExit(f"FAIL: metrics differ ({len(a)} vs {len(b)} lines)")
    fa, fb = checkpoint_bytes(straight, args.steps), checkpoint_bytes(soak, args.steps)
    for name in fa:
        if fa[name] != fb[name]:
            raise SystemExit(f"FAIL: {name} of step {args.steps} differs from the uninterrupted run")
    if leftovers(soak):
        raise SystemExit(f"FAIL: temporary directories left behind: {leftovers(soak)}")
    print(f"{killed}/{killed} kills survived, {mid_checkpoint} of them mid-checkpoint "
          f"({mid_checkpoint - timed_mid_write} held by the hook at {', '.join(sorted(at_points)) or '-'}; "
          f"{timed_mid_write} random kills landed inside a write); {attempts} attempts, "
          f"{args.steps} steps: final weights, optimizer state, trainer state and {len(a)} metrics lines "
          f"identical to the uninterrupted run ({straight_seconds:.0f} s)")
    if killed < args.kills:
        raise SystemExit(f"FAIL: only {killed} of {args.kills} planned kills happened (the run finished first); "
                         f"use more --steps")


if __name__ == "__main__":
    main()
