"""Draws a run's metrics.jsonl as PNG curves: reward, held-out accuracy (with its standard
error), KL to the reference (when measured), response length, entropy.

    plot_metrics.py RUN_DIR [RUN_DIR ...] [--out curves.png] [--labels a,b]

Several run directories are drawn on the same axes (e.g. seeds or ablations).
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(run_dir):
    rows = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def series(rows, key, sub=None):
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if sub is not None:
            v = v.get(sub) if isinstance(v, dict) else None
        if v is not None:
            xs.append(r["step"])
            ys.append(v)
    return xs, ys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", default=None)
    ap.add_argument("--labels", default=None)
    args = ap.parse_args()
    labels = args.labels.split(",") if args.labels else [os.path.basename(os.path.normpath(r)) for r in args.runs]
    out = args.out or os.path.join(args.runs[0], "curves.png")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = [("reward_mean", None, "train reward"), ("accuracy", None, "train accuracy"),
              ("eval", "accuracy", "held-out accuracy"), ("kl_ref", None, "KL to reference"),
              ("response_length", None, "response tokens"), ("entropy", None, "policy entropy (nats/token)")]
    for run, label in zip(args.runs, labels):
        rows = load(run)
        for ax, (key, sub, title) in zip(axes.flat, panels):
            xs, ys = series(rows, key, sub)
            if not xs:
                continue
            if key == "eval":
                _, err = series(rows, "eval", "accuracy_stderr")
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
            else:
                ax.plot(xs, ys, label=label, alpha=0.85)
    for ax, (_, _, title) in zip(axes.flat, panels):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines or ax.containers:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
