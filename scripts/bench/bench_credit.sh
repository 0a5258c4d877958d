#!/usr/bin/env bash
# Credit-map benchmark (prints numbers; nothing is asserted):
#  1. overhead on the demo: `anchor-rl train` of configs/ablations/none.yaml vs coupled.yaml and
#     thought_anchor.yaml, each with heads ranked over the batch (a separate observed pass) and
#     per micro-batch (the map built inside the training forward), for STEPS steps each (same
#     seed: identical first rollouts); mean s/step and training s/step (forward + backward +
#     optimizer + credit, without the rollout, whose length varies) over the steps after
#     warm-up, and the credit time as % of step time (metric perf.credit_percent_of_step);
#     the five runs repeat --rounds times in turn (this machine's speed drifts by tens of
#     percent within minutes; interleaving spreads the drift over every run alike);
#  2. streaming vs naive at N = 1k, 4k, 16k tokens on a random 8-layer, 8-head model
#     (anchor-bench-credit, one process per mode): wall time and peak extra memory; naive is
#     skipped, with the reason, where its full attention maps would not fit in memory.
#   scripts/bench/bench_credit.sh [--steps 12] [--rounds 3] [--tokens "1024 4096 16384"] [--threads 0]
#   (--tokens "" skips part 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=12; rounds=3; tokens="1024 4096 16384"; threads=0
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2;;
    --rounds) rounds="$2"; shift 2;;
    --tokens) tokens="$2"; shift 2;;
    --threads) threads="$2"; shift 2;;
    *) echo "bench_credit.sh: unknown option $1" >&2; exit 2;;
  esac
done
[ -x build/anchor-bench-credit ] || scripts/setup.sh
VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
out="runs/bench-credit"; rm -rf "$out"; mkdir -p "$out"

echo "== demo step time: none vs coupled / thought_anchor ($steps steps each, $rounds rounds)"
for ((round = 0; round < rounds; round++)); do
  for run in none coupled:batch coupled:micro_batch thought_anchor:batch thought_anchor:micro_batch; do
    s="${run%%:*}"; ranking="${run#*:}"; [ "$ranking" = "$run" ] && ranking=batch
    build/anchor-rl train "configs/ablations/$s.yaml" --run-dir "$out/demo-${run/:/-}-r$round" \
      --set train.steps="$steps" --set credit.head_ranking="$ranking" --set data.eval= \
      --set model.threads="$threads" --set logging.progress=false --set checkpoint.every=0 > /dev/null 2>&1
  done
done

echo "== streaming vs naive"
avail_mb=$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)
for n in $tokens; do
  for mode in none streaming naive; do
    if [ "$mode" = naive ]; then
      # Observed maps [J, N, N] float held at once, plus the stacked copy and one product.
      need_mb=$(( 32 * n / 1024 * n / 1024 * 4 * 3 ))
      if [ "$need_mb" -gt "$avail_mb" ]; then
        echo "{\"mode\": \"naive\", \"tokens\": $n, \"skipped\": \"needs ~${need_mb} MB for the full maps, ${avail_mb} MB available\"}" >> "$out/grid.jsonl"
        continue
      fi
    fi
    build/anchor-bench-credit --mode "$mode" --tokens "$n" --threads "$threads" >> "$out/grid.jsonl"
  done
done

"$VENV/bin/python" - "$out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
print("\n| credit strategy | head ranking | s/step (mean after step 2) | training s/step | forward s | credit s | credit % of step | step vs none | training vs none |")
print("|---|---|---|---|---|---|---|---|---|")
base = None
for run in ("none", "coupled-batch", "coupled-micro_batch", "thought_anchor-batch", "thought_anchor-micro_batch"):
    rows = []
    for d in sorted(x for x in os.listdir(out) if x.startswith(f"demo-{run}-r")):  # every round, pooled
        rows += [json.loads(l) for l in open(os.path.join(out, d, "metrics.jsonl")) if '"perf"' in l][2:]
    step = statistics.mean(r["perf"]["step_seconds"] for r in rows)
    train = statistics.mean(r["perf"]["step_seconds"] - r["perf"]["rollout_seconds"] - r["perf"]["reward_seconds"]
                            for r in rows)
    fwd = statistics.mean(r["perf"]["forward_seconds"] for r in rows)
    cs = statistics.mean(r["perf"]["credit_seconds"] for r in rows)
    pct = statistics.mean(r["perf"]["credit_percent_of_step"] for r in rows)
    base = base or (step, train)
    name, _, ranking = run.partition("-")
    print(f"| {name} | {ranking or '-'} | {step:.3f} | {train:.3f} | {fwd:.3f} | {cs:.4f} | {pct:.2f}% | "
          f"{100 * (step / base[0] - 1):+.1f}% | {100 * (train / base[1] - 1):+.1f}% |")
if not os.path.exists(os.path.join(out, "grid.jsonl")):  # --tokens ""
    sys.exit(0)
grid = [json.loads(l) for l in open(os.path.join(out, "grid.jsonl"))]
print("\n| tokens N | mode | wall s | reduce s | extra peak memory MB | vs no credit |")
print("|---|---|---|---|---|---|")
none = {g["tokens"]: g for g in grid if g["mode"] == "none"}
for g in grid:
    if "skipped" in g:
        print(f"| {g['tokens']} | naive | - | - | - | cannot run: {g['skipped']} |")
        continue
    ref = none[g["tokens"]]
    print(f"| {g['tokens']} | {g['mode']} | {g['seconds']:.2f} | {g['reduce_seconds']:.2f} | {g['extra_peak_mb']:.0f} | "
          f"time x{g['seconds'] / ref['seconds']:.2f}, memory +{g['extra_peak_mb'] - ref['extra_peak_mb']:.0f} MB |")
g0 = next(g for g in grid if "observed_layers" in g)
print(f"\nmodel: {g0['layers']} layers x {g0['heads']} heads, observed layers {g0['observed_layers']}, "
      f"{g0['threads']} threads; streaming chunk 128 query rows")
PY
