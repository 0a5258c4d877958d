"""Data-parallel throughput on this machine: the same run as 1 rank x T threads and as
K ranks x T/K threads (mpirun), same global batch and seed. Prints seconds per step (steps
after the first), samples per second, the scaling efficiency (K-rank throughput / 1-rank
throughput; 1.0 = the split costs nothing) and the communication share of a step (rank 0's
perf.comm_seconds / step_seconds, which includes waiting for slower ranks).

  ~/.cache/anchor-rl/venv/bin/python scripts/bench/bench_data_parallel.py            # demo model, 2 cores
  ... scripts/bench/bench_data_parallel.py --config configs/smollm2_grpo.yaml --steps 3 --set model.path=DIR
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"bench_data_parallel: {' '.join(cmd)} exited with {out.returncode}")


def steps_of(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if '"perf"' in line]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anchor-rl"))
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads in all (split over ranks)")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = ap.parse_args()
    overrides = ["train.steps=%d" % args.steps, "data.eval=", "checkpoint.every=0", "logging.progress=false"] + args.set
    scratch = tempfile.mkdtemp(prefix="bench_dp_")
    rows = []
    for ranks in (1, args.ranks):
        threads = max(1, args.threads // ranks)
        run_dir = os.path.join(scratch, f"{ranks}x{threads}")
        cmd = [args.binary, "train", args.config, "--run-dir", run_dir, "--set", f"model.threads={threads}"]
        for o in overrides:
            cmd += ["--set", o]
        if ranks > 1:
            cmd = [os.path.join(ROOT, "scripts", "launch", "launch_mpi.sh"), "-np", str(ranks)] + cmd
        run(cmd)
        steps = steps_of(run_dir)[1:] or steps_of(run_dir)
        step_s = statistics.mean(s["perf"]["step_seconds"] for s in steps)
        comm_s = statistics.mean(s["perf"].get("comm_seconds", 0.0) for s in steps)
        samples = statistics.mean(s["groups_seen"] for s in steps)  # prompts sampled per step
        rows.append((ranks, threads, step_s, comm_s, samples))
    shutil.rmtree(scratch, ignore_errors=True)
    g = None
    print(f"| ranks x threads | s/step | groups sampled/s | comm share of step | scaling efficiency |")
    print(f"|---|---|---|---|---|")
    base = rows[0][4] / rows[0][2]
    for ranks, threads, step_s, comm_s, samples in rows:
        rate = samples / step_s
        print(f"| {ranks} x {threads} | {step_s:.3f} | {rate:.1f} | {100 * comm_s / step_s:.1f}% | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
