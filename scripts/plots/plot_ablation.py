"""Draws the held-out curves of an ablation study (the report.json `anchor-rl ablate` writes):
one line per arm, the mean over seeds with a band of ± one standard error, and each seed's curve
faintly behind it. Beside it, every run's final held-out accuracy as a dot per seed, the same
seed joined across arms (the pairing the report's differences use), with each arm's mean ± SE
and the start as a dashed line. When the ledger has training curves, a third panel shows the
token entropy of what each step sampled, the same way (how far each arm moved its policy).

    plot_ablation.py LEDGER/report.json OUT.png

`anchor-rl ablate` calls it after writing the report; run it by hand to redraw.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def band(ax, steps, mean, se, color, label, marker="o"):
    ax.plot(steps, mean, color=color, linewidth=2, marker=marker, markersize=3, label=label)
    ax.fill_between(steps, [m - s for m, s in zip(mean, se)], [m + s for m, s in zip(mean, se)], color=color,
                    alpha=0.2, linewidth=0)


def final_per_run(ax, report, colors):
    """Each run's last held-out accuracy: x = arm, a dot per seed, grey lines join one seed's runs."""
    arms = report["arms"]
    finals = {}  # seed -> {arm index: accuracy}
    starts = []
    for i, arm in enumerate(arms):
        for run in arm.get("runs", []):
            if run["curve"]:
                finals.setdefault(run["seed"], {})[i] = run["curve"][-1]["accuracy"]
                starts.append(run["curve"][0]["accuracy"])
    for seed, by_arm in sorted(finals.items()):
        xs = sorted(by_arm)
        ax.plot(xs, [by_arm[x] for x in xs], color="grey", alpha=0.35, linewidth=0.8, zorder=1)
    for i, arm in enumerate(arms):
        ys = [run["curve"][-1]["accuracy"] for run in arm.get("runs", []) if run["curve"]]
        ax.scatter([i] * len(ys), ys, color=colors[i % len(colors)], s=18, zorder=2)
        final = arm.get("final_accuracy", {})
        if final.get("n"):
            ax.errorbar([i + 0.18], [final["mean"]], yerr=[final["se"]], color=colors[i % len(colors)], marker="_",
                        markersize=14, capsize=3, zorder=3)
    if starts and min(starts) == max(starts):
        ax.axhline(starts[0], color="black", linestyle="--", linewidth=0.8, label=f"start {starts[0]:.4g}")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels([a["arm"] for a in arms], rotation=20, fontsize=8)
    ax.set_xlim(-0.5, len(arms) - 0.5)
    ax.set_ylabel("final held-out accuracy")
    ax.set_title("each run's final accuracy (lines join one seed; bar: mean ± SE)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_ablation.py REPORT.json OUT.png")
    with open(sys.argv[1]) as f:
        report = json.load(f)
    has_training = any(arm.get("training") for arm in report["arms"])
    panels = 3 if has_training else 2
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 4.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax, fax, tax = axes[0][0], axes[0][1], axes[0][2] if has_training else None
    final_per_run(fax, report, colors)
    for i, arm in enumerate(report["arms"]):
        color = colors[i % len(colors)]
        label = f"{arm['arm']}{' (control)' if arm.get('control') else ''} (n={len(arm['seeds'])})"
        curve = arm["curve"]
        if curve:
            for run in arm.get("runs", []):
                ax.plot([p["step"] for p in run["curve"]], [p["accuracy"] for p in run["curve"]], color=color,
                        alpha=0.18, linewidth=0.8)
            band(ax, [p["step"] for p in curve], [p["mean"] for p in curve], [p["se"] for p in curve], color, label)
        training = arm.get("training")
        if tax is not None and training:
            for run in arm.get("runs", []):
                if run.get("training"):
                    tax.plot([p["step"] for p in run["training"]], [p["entropy"] for p in run["training"]],
                             color=color, alpha=0.18, linewidth=0.8)
            tc = training["curve"]
            band(tax, [p["step"] for p in tc], [p["entropy"]["mean"] for p in tc], [p["entropy"]["se"] for p in tc],
                 color, f"{arm['arm']} (n={len(training['seeds'])})", marker=None)
    ax.set_xlabel("step")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"{report['name']}: mean over seeds ± SE (thin: each seed)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if tax is not None:
        tax.set_xlabel("step")
        tax.set_ylabel("token entropy of the sampled responses (nats)")
        tax.set_title("what each step sampled (after dynamic sampling)", fontsize=10)
        tax.grid(alpha=0.3)
        tax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
