#!/usr/bin/env bash
# A/B benchmark of `anchor-rl generate` between two builds (prints numbers; nothing is asserted):
# tokens/s of each binary, runs interleaved (A B A B ...) so that the machine's drift hits both
# alike, best of --repeat; and whether both produced the same tokens (jsonl output compared).
#   scripts/bench/bench_decode_ab.sh OLD_BINARY [NEW_BINARY] [--model DIR] [--batches "16 64"]
#                                    [--new-tokens 128] [--repeat 3] [--threads 2]
# Two settings per batch size: "fixed" (EOS ignored: every row decodes --new-tokens, as
# bench_generate.py) and "rollout" (rows stop at EOS at different steps, as in RL groups).
# Keep an old binary before rebuilding: cp build/anchor-rl /tmp/anchor-rl-before
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { sed -n 2,9p "$0" >&2; exit 2; }
old="$1"; shift
new=build/anchor-rl
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then new="$1"; shift; fi
model="$HOME/.cache/anchor-rl/models/smollm2-135m-instruct"; batches="16 64"; tokens=128; repeat=3; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2;;
    --batches) batches="$2"; shift 2;;
    --new-tokens) tokens="$2"; shift 2;;
    --repeat) repeat="$2"; shift 2;;
    --threads) threads="$2"; shift 2;;
    *) echo "bench_decode_ab.sh: unknown option $1" >&2; exit 2;;
  esac
done
for b in "$old" "$new"; do [ -x "$b" ] || { echo "bench_decode_ab.sh: $b is not an executable" >&2; exit 2; }; done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prompt="What is 17 times 23? Explain step by step."

echo "| setting | batch | tokens | A tokens/s | B tokens/s | B / A | same tokens |"
echo "|---|---|---|---|---|---|---|"
for batch in $batches; do
  for setting in fixed rollout; do
    extra=(); [ "$setting" = fixed ] && extra=(--ignore-eos)
    args=(generate --model "$model" --chat --prompt "$prompt" --num-samples "$batch" --max-new-tokens "$tokens"
          --threads "$threads" --temperature 1 --seed 3 "${extra[@]}")
    best_a=0; best_b=0; generated=0
    for ((i = 0; i < repeat; i++)); do
      for side in a b; do
        bin=$old; [ $side = b ] && bin=$new
        line=$("$bin" "${args[@]}" --bench)
        read -r tps generated < <(python3 -c \
          'import json,sys; j = json.loads(sys.argv[1]); print(j["tokens_per_second"], j["generated_tokens"])' "$line")
        if [ $side = a ]; then best_a=$(python3 -c "print(max($best_a, $tps))"); else best_b=$(python3 -c "print(max($best_b, $tps))"); fi
      done
    done
    "$old" "${args[@]}" --output jsonl > "$tmp/a.jsonl" 2>/dev/null
    "$new" "${args[@]}" --output jsonl > "$tmp/b.jsonl" 2>/dev/null
    same=no; cmp -s "$tmp/a.jsonl" "$tmp/b.jsonl" && same=yes
    python3 -c "print(f'| $setting | $batch | $generated | {$best_a:.1f} | {$best_b:.1f} | {$best_b / $best_a:.3f}x | $same |')"
  done
done
