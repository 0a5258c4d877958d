"""Table and plot of a credit ablation (scripts/experiments/run_ablation.sh): for each strategy, held-out
accuracy at the start and at the last evaluation, mean ± std over seeds, the gain, and the
credit metrics; plus held-out accuracy vs step (mean over seeds, one line per strategy).

    ablation_table.py RUNS_DIR [--plot out.png]

RUNS_DIR holds STRATEGY-seedS run directories.
"""
import argparse
import collections
import json
import os
import re
import statistics


def load(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(values):
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--plot")
    args = ap.parse_args()
    order = ["none", "random", "entropy", "local_chunk", "global_anchor", "coupled", "thought_anchor"]
    runs = collections.defaultdict(dict)
    for name in sorted(os.listdir(args.runs)):
        m = re.fullmatch(r"(.+)-seed(\d+)", name)
        path = os.path.join(args.runs, name)
        if m and os.path.exists(os.path.join(path, "finished")):
            runs[m.group(1)][int(m.group(2))] = load(path)
    strategies = [s for s in order if s in runs] + sorted(s for s in runs if s not in order)
    print("| strategy | seeds | steps | start accuracy | final accuracy | gain | amplified share |")
    print("|---|---|---|---|---|---|---|")
    curves = {}
    for s in strategies:
        starts, finals, gains, shares = [], [], [], []
        steps = 0
        per_step = collections.defaultdict(list)
        for seed, rows in sorted(runs[s].items()):
            evals = [r for r in rows if "eval" in r]
            starts.append(evals[0]["eval"]["accuracy"])
            finals.append(evals[-1]["eval"]["accuracy"])
            gains.append(finals[-1] - starts[-1])
            steps = evals[-1]["step"]
            for r in evals:
                per_step[r["step"]].append(r["eval"]["accuracy"])
            train = [r for r in rows if "perf" in r]
            shares.append(statistics.mean(r.get("credit", {}).get("amplified_share", 0.0) for r in train))
        curves[s] = sorted((k, statistics.mean(v)) for k, v in per_step.items() if len(v) == len(runs[s]))
        print(f"| {s} | {len(runs[s])} | {steps} | {fmt(starts)} | {fmt(finals)} | {fmt(gains)} | "
              f"{statistics.mean(shares):.2f} |")
    print("\nmean ± std over seeds; accuracy on the first 200 held-out prompts x 4 samples "
          "(binomial SE of one evaluation ≈ 0.017). Step times: scripts/bench/bench_credit.sh.")
    if args.plot and curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for s, pts in curves.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
        ax.set_xlabel("step")
        ax.set_ylabel("held-out accuracy (mean over seeds)")
        ax.set_title("credit ablation on the demo task")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
