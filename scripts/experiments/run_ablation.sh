#!/usr/bin/env bash
# Credit ablation: every configs/ablations/*.yaml (one credit strategy each, the rest is the
# demo) over several seeds, then the table (final held-out accuracy mean ± std per strategy)
# and the accuracy-vs-step plot from scripts/plots/ablation_table.py.
#   scripts/experiments/run_ablation.sh [--steps N] [--seeds "0 1 2"] [--threads T] [--eval-every K]
#                           [--strategies "none coupled ..."] [--out DIR]
# Runs go seed by seed (every strategy for seed 0 first), so a partial sweep stays balanced.
# An interrupted run resumes from its latest checkpoint; finished runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=400; seeds="0 1 2"; threads=0; eval_every=100; out=runs/ablations; strategies=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2;;
    --seeds) seeds="$2"; shift 2;;
    --threads) threads="$2"; shift 2;;
    --eval-every) eval_every="$2"; shift 2;;
    --strategies) strategies="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    *) echo "run_ablation.sh: unknown option $1" >&2; exit 2;;
  esac
done
bin="${ANCHOR_RL:-build/anchor-rl}"   # a frozen copy keeps a long sweep on one binary
[ -x "$bin" ] || scripts/setup.sh
VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
if [ -z "$strategies" ]; then
  strategies=$(for f in configs/ablations/*.yaml; do basename "$f" .yaml; done)
fi
ckpt_every=$(( steps / 4 > 0 ? steps / 4 : 1 ))
for seed in $seeds; do
  for name in $strategies; do
    dir="$out/$name-seed$seed"
    [ -f "$dir/finished" ] && continue
    resume=()
    if [ -e "$dir/checkpoints/latest" ]; then resume=(--resume latest); else rm -rf "$dir"; fi
    echo "== $name seed $seed ($steps steps) -> $dir"
    "$bin" train "configs/ablations/$name.yaml" --run-dir "$dir" "${resume[@]}" \
      --set train.seed="$seed" --set train.steps="$steps" --set train.eval_every="$eval_every" \
      --set checkpoint.every="$ckpt_every" --set model.threads="$threads" --set logging.progress=false
    touch "$dir/finished"
  done
done
"$VENV/bin/python" scripts/plots/ablation_table.py "$out" --plot "$out/ablation.png"
