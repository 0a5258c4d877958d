#!/usr/bin/env bash
# The main job. Until the RL trainer lands, the demo builds a tiny Llama checkpoint in
# Hugging Face format (random weights, a SentencePiece tokenizer trained on a small corpus)
# and samples from it with `anchor-rl generate`. Random weights make random text: what it
# shows is the pipeline (HF checkpoint -> KV-cache sampler), not a trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
MODEL="${BUILD_DIR:-build}/demo-model"
[ -f "$MODEL/config.json" ] || "$VENV/bin/python" scripts/make_tiny_model.py "$MODEL"
"${BUILD_DIR:-build}/anchor-rl" generate --model "$MODEL" \
  --prompt "Countdown: reach 24 with 3 5 8." --prompt "Question: what is 12 times 7?" \
  --num-samples 2 --max-new-tokens 40 --temperature 0.8 --top-p 0.95 --seed 1
