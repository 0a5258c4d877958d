"""GRPO on SmolLM2 with and without attention sinks in the credit map (docs/design.md §5.7): plain GRPO
(credit none) vs the coupled strategy with sinks kept vs excluded, several seeds each, on the
task of configs/smollm2_grpo.yaml. Prints held-out greedy accuracy at the start and the end of
every run and mean ± std over seeds per setting; writes summary.json under --out.

The full settings are the configs' own (50 steps of 4 prompts x 8 samples, 400 held-out
problems evaluated at steps 0, 25 and 50). --quick is the size that fits about 90 minutes on
2 CPU cores: 12 steps, evaluation of 200 held-out problems at the start and the end only.
--full-strategies adds the entropy baseline and thought anchors (scripts/launch/device_check.sh runs
that on a GPU when one is lent).

Usage:
  credit_sink_grpo.py [--quick] [--seeds 0 1 2] [--full-strategies] [--out runs/credit_sinks]
                      [--binary build/anchor-rl] [--set key=value ...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETTINGS = {
    "none": ("configs/smollm2_grpo.yaml", []),
    "coupled_keep": ("configs/smollm2_grpo_coupled.yaml", ["credit.sinks=keep"]),
    "coupled_exclude": ("configs/smollm2_grpo_coupled.yaml", ["credit.sinks=exclude"]),
}
EXTRA = {
    "entropy": ("configs/smollm2_grpo.yaml", ["credit.strategy=entropy"]),
    "thought_anchor": ("configs/smollm2_grpo.yaml", ["credit.strategy=thought_anchor"]),
}


def evals(run_dir):
    out = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            if "eval" in d:
                out.append((d["step"], d["eval"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="12 steps, 200 held-out problems at start and end")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--full-strategies", action="store_true", help="add entropy and thought_anchor")
    ap.add_argument("--out", default="runs/credit_sinks")
    ap.add_argument("--binary", default="build/anchor-rl")
    ap.add_argument("--set", action="append", default=[], help="extra config override for every run")
    args = ap.parse_args()
    settings = dict(SETTINGS)
    if args.full_strategies:
        settings.update(EXTRA)
    size = (["train.steps=12", "train.eval_every=12", "data.eval_limit=200", "checkpoint.every=0"]
            if args.quick else [])
    os.chdir(ROOT)
    rows = []
    for name, (config, sets) in settings.items():
        for seed in args.seeds:
            run_dir = os.path.join(args.out, f"{name}-seed{seed}")
            overrides = sets + size + [f"train.seed={seed}"] + args.set
            done = os.path.exists(os.path.join(run_dir, "metrics.jsonl")) and len(evals(run_dir)) >= 2
            if not done:
                cmd = [args.binary, "train", config, "--run-dir", run_dir]
                for o in overrides:
                    cmd += ["--set", o]
                print("+", " ".join(cmd), flush=True)
                start = time.time()
                subprocess.run(["rm", "-rf", run_dir], check=True)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                print(f"  {name} seed {seed}: {(time.time() - start) / 60:.1f} min", flush=True)
            e = evals(run_dir)
            rows.append({"setting": name, "seed": seed, "start": e[0][1]["accuracy"], "end": e[-1][1]["accuracy"],
                         "end_se": e[-1][1]["accuracy_stderr"], "end_step": e[-1][0],
                         "samples": e[-1][1]["samples"]})
    print("\n| setting | seed | steps | held-out start | held-out end |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['seed']} | {r['end_step']} | {r['start']:.3f} | {r['end']:.3f} ± {r['end_se']:.3f} |")
    summary = {}
    print("\n| setting | seeds | held-out end, mean ± std over seeds |")
    print("|---|---|---|")
    for name in settings:
        ends = [r["end"] for r in rows if r["setting"] == name]
        std = statistics.stdev(ends) if len(ends) > 1 else 0.0
        summary[name] = {"mean": statistics.mean(ends), "std": std, "ends": ends}
        print(f"| {name} | {len(ends)} | {statistics.mean(ends):.3f} ± {std:.3f} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"quick": args.quick, "rows": rows, "summary": summary, "command": sys.argv}, f, indent=1)


if __name__ == "__main__":
    main()
