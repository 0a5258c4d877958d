#!/usr/bin/env bash
# The main job: set-up + build, then the embedded RL demo — GRPO on 3-number countdown,
# starting from the tiny SFT model shipped in data/demo-model (~30% held-out accuracy).
# Progress (step, reward, accuracy, tokens/s, ETA) is printed every step; held-out accuracy
# every 100 steps. About 6 minutes on 2 CPU cores once built. Curves land in RUN_DIR/curves.png.
#   scripts/demo.sh [--set section.key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
RUN_DIR="runs/demo-$(date +%Y%m%d-%H%M%S)"
build/anchor-rl train configs/demo.yaml --run-dir "$RUN_DIR" "$@"
"$VENV/bin/python" scripts/plots/plot_metrics.py "$RUN_DIR"
echo "demo: run directory $RUN_DIR (metrics.jsonl, curves.png, checkpoints/)"
