#!/usr/bin/env bash
# Runs the demo (configs/demo.yaml) for several seeds and prints held-out accuracy at the
# start and the end of each run, with the standard error of each evaluation.
#   scripts/experiments/run_demo_seeds.sh [SEEDS...]      (default: 0 1 2; each run ~6 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds=("$@"); [ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
for s in "${seeds[@]}"; do
  dir="runs/demo-seed$s"
  if [ ! -f "$dir/checkpoints/latest" ] || ! grep -q '"step":400' "$dir/metrics.jsonl" 2>/dev/null; then
    rm -rf "$dir"
    "${ANCHOR_RL:-build/anchor-rl}" train configs/demo.yaml --set train.seed="$s" --run-dir "$dir"
  fi
done
VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
"$VENV/bin/python" - "${seeds[@]}" <<'PY'
import json, statistics, sys
rows = []
for s in sys.argv[1:]:
    evals = [json.loads(l) for l in open(f"runs/demo-seed{s}/metrics.jsonl") if '"eval"' in l]
    first, last = evals[0], evals[-1]
    secs = sum(json.loads(l).get("perf", {}).get("step_seconds", 0) for l in open(f"runs/demo-seed{s}/metrics.jsonl"))
    rows.append((s, first["eval"], last["eval"], last["step"], secs))
print("| seed | steps | start accuracy | end accuracy | gain | gain / SE | train time |")
print("|---|---|---|---|---|---|---|")
for s, a, b, steps, secs in rows:
    se = (a["accuracy_stderr"] ** 2 + b["accuracy_stderr"] ** 2) ** 0.5
    gain = b["accuracy"] - a["accuracy"]
    print(f"| {s} | {steps} | {a['accuracy']:.3f} ± {a['accuracy_stderr']:.3f} | {b['accuracy']:.3f} ± "
          f"{b['accuracy_stderr']:.3f} | {gain:+.3f} | {gain / se:.1f} | {secs / 60:.1f} min |")
gains = [b["accuracy"] - a["accuracy"] for _, a, b, _, _ in rows]
if len(gains) > 1:
    print(f"\nmean gain {statistics.mean(gains):+.3f} ± {statistics.stdev(gains):.3f} (std over seeds)")
PY
