"""The README's memory table: `anchor-rl plan` for Qwen3 0.6B / 1.7B / 4B / 8B (configs/model_shapes:
config.json only) x ZeRO stage 0 / 1 / 2 x one 8-GPU node of 80 GB or 141 GB GPUs, at the GRPO
setting of configs/qwen3_grpo_gpu.yaml, and LoRA (rank 16, all-linear, ZeRO-0) on the 80 GB node.
Prints a Markdown table: the peak per GPU, the phase that sets it, and whether it fits (rollout
sampled in chunks where all rows do not).

Usage: python3 scripts/bench/plan_table.py [build/anchor-rl]
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = ["qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"]
# What nvidia-smi reports as the total of an H100 80 GB and an H200 141 GB (what cudaMemGetInfo gives
# the plan at the start of a run).
DEVICES = [("8 x 80 GB", "81559MiB"), ("8 x 141 GB", "143771MiB")]


def plan(binary, model, stage, memory, extra=()):
    out = subprocess.run([binary, "plan", "configs/qwen3_grpo_gpu.yaml", "--world-size", "8", "--device-memory", memory,
                          "--set", f"model.path=configs/model_shapes/{model}", "--set", f"distributed.zero_stage={stage}",
                          "--json"] + list(extra), cwd=ROOT, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(out.stderr)
    return json.loads(out.stdout)


def cell(p):
    gib = p["peak_bytes"] / 2**30
    if not p["fits"]:
        return f"{gib:.0f} GiB, does not fit"
    chunk = "" if p["rollout_chunk_rows"] == 128 else f", {p['rollout_chunk_rows']}-row sampling chunks"
    return f"{gib:.0f} GiB ({p['peak_phase']}{chunk})"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "anchor-rl")
    header = "| model | parameters | " + " | ".join(f"ZeRO-{s}, {d}" for d, _ in DEVICES for s in (0, 1, 2))
    print(header + f" | LoRA r16, ZeRO-0, {DEVICES[0][0]} |")
    print("|" + "---|" * (3 + 3 * len(DEVICES)))
    for m in MODELS:
        cells = []
        params = None
        for _, memory in DEVICES:
            for stage in (0, 1, 2):
                p = plan(binary, m, stage, memory)
                params = p["parameters"]
                cells.append(cell(p))
        cells.append(cell(plan(binary, m, 0, DEVICES[0][1], ["--set", "model.lora.enabled=true",
                                                             "--set", "model.lora.rank=16"])))
        print(f"| {m.replace('qwen3', 'Qwen3').upper().replace('QWEN3', 'Qwen3')} | {params / 1e9:.2f} B | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
