"""Draws the held-out curves of an ablation study (the report.json `anchor-rl ablate` writes):
one line per arm, the mean over seeds with a band of ± one standard error, and each seed's curve
faintly behind it.

    plot_ablation.py LEDGER/report.json OUT.png

`anchor-rl ablate` calls it after writing the report; run it by hand to redraw.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_ablation.py REPORT.json OUT.png")
    with open(sys.argv[1]) as f:
        report = json.load(f)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, arm in enumerate(report["arms"]):
        color = colors[i % len(colors)]
        curve = arm["curve"]
        if not curve:
            continue
        steps = [p["step"] for p in curve]
        mean = [p["mean"] for p in curve]
        se = [p["se"] for p in curve]
        for run in arm.get("runs", []):
            ax.plot([p["step"] for p in run["curve"]], [p["accuracy"] for p in run["curve"]], color=color,
                    alpha=0.18, linewidth=0.8)
        label = f"{arm['arm']}{' (control)' if arm.get('control') else ''} (n={len(arm['seeds'])})"
        ax.plot(steps, mean, color=color, linewidth=2, marker="o", markersize=3, label=label)
        ax.fill_between(steps, [m - s for m, s in zip(mean, se)], [m + s for m, s in zip(mean, se)], color=color,
                        alpha=0.2, linewidth=0)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"{report['name']}: mean over seeds ± SE (thin: each seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
