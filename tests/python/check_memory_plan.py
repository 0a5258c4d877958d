"""The memory plan against what a run uses (docs/memory.md): `anchor-rl plan CONFIG --json`
next to a short `anchor-rl train` of the same config, whose metrics carry the process's peak
resident memory (perf.peak_memory_mb) and each phase's (perf.peak_memory_mb_by_phase: rollout,
scoring, update, evaluation). Prints, per phase, the plan's resident + phase against the
largest measured peak of that phase, and the plan's peak against the run's; exits 1 when the
peak is off by more than --tolerance (default 15%).

Usage: check_memory_plan.py ANCHOR_RL_BINARY SCRATCH_DIR CONFIG [--steps N] [--tolerance F]
                            [--set k=v]...
  ctest memory_plan_matches_demo: the demo config, 8 steps.
  SmolLM2 (README): check_memory_plan.py build/anchor-rl /tmp/plan configs/smollm2_multistep.yaml
                    --steps 4 --set data.eval_limit=160 --set train.eval_every=0
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("scratch")
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--tolerance", type=float, default=0.15)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    sets = [x for kv in a.set for x in ("--set", kv)]
    plan = json.loads(subprocess.run([a.binary, "plan", a.config, "--json"] + sets, cwd=ROOT, check=True,
                                     capture_output=True, text=True).stdout)
    run_dir = os.path.join(a.scratch, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [a.binary, "train", a.config, "--run-dir", run_dir, "--skip-start-eval", "--set", f"train.steps={a.steps}",
           "--set", "checkpoint.every=0", "--set", "logging.tensorboard=false"] + sets
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3000)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {out.returncode}")
    lines = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    measured_peak = max(l.get("perf", {}).get("peak_memory_mb", 0) or 0 for l in lines)
    by_phase = {}
    for l in lines:
        for name, mb in l.get("perf", {}).get("peak_memory_mb_by_phase", {}).items():
            by_phase[name] = max(by_phase.get(name, 0), mb)
    resident = plan["resident_bytes"] / MIB
    print(f"{plan['model']}\n{plan['settings']}\nsteps: {a.steps}; plan resident {resident:.0f} MiB")
    print(f"{'phase':12} {'plan (MiB)':>11} {'measured':>10} {'plan/measured':>14}")
    for p in plan["phases"]:
        planned = resident + p["bytes"] / MIB
        got = by_phase.get(p["name"])
        ratio = f"{planned / got:.3f}" if got else "-"
        print(f"{p['name']:12} {planned:11.0f} {got if got else float('nan'):10.0f} {ratio:>14}")
    planned_peak = plan["peak_bytes"] / MIB
    ratio = planned_peak / measured_peak
    print(f"{'peak':12} {planned_peak:11.0f} {measured_peak:10.0f} {ratio:14.3f}  (plan's peak phase: {plan['peak_phase']})")
    if abs(ratio - 1) > a.tolerance:
        raise SystemExit(f"FAIL: the plan's peak is {100 * (ratio - 1):+.1f}% off the measured peak "
                         f"(tolerance {100 * a.tolerance:.0f}%)")
    print(f"OK: the plan's peak is within {100 * a.tolerance:.0f}% of the measured peak ({100 * (ratio - 1):+.1f}%)")


if __name__ == "__main__":
    main()
