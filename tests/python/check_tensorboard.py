"""TensorBoard event files, read back by the `tensorboard` package's own reader.

A 4-step demo run (checkpoints at steps 2 and 4, held-out evaluation at 0, 2 and 4) writes
RUN_DIR/tensorboard/; then the run is resumed from its step-2 checkpoint, which redoes steps 3
and 4 into a second event file that starts with SessionLog.START at step 3. TensorBoard's
EventAccumulator must read every scalar of metrics.jsonl, at its step, equal to float32
precision, each step once (the first session's steps 3 and 4 purged), and the config as a
text summary.

Usage: check_tensorboard.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import math
import os
import shutil
import subprocess
import sys

from tensorboard.backend.event_processing import event_accumulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(binary, args):
    out = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"FAIL: anchor-rl {' '.join(args)} exited with {out.returncode}")


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        tag = f"{prefix}/{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, tag))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and tag != "step":
            out[tag] = float(v)
    return out


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    run_dir = os.path.join(scratch, "tensorboard-run")
    shutil.rmtree(run_dir, ignore_errors=True)
    common = ["train", "configs/demo.yaml", "--run-dir", run_dir, "--set", "train.steps=4",
              "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
              "--set", "algo.dynamic_sampling=false", "--set", "data.eval_limit=4", "--set", "train.eval_every=2",
              "--set", "checkpoint.every=2", "--set", "algo.micro_batch_size=16"]
    run(binary, common)
    run(binary, common + ["--resume", os.path.join(run_dir, "checkpoints", "step-00000002")])
    files = sorted(os.listdir(os.path.join(run_dir, "tensorboard")))
    if len(files) != 2:
        raise SystemExit(f"FAIL: expected one event file per session, got {files}")

    acc = event_accumulator.EventAccumulator(os.path.join(run_dir, "tensorboard"),
                                             size_guidance={event_accumulator.SCALARS: 0,
                                                            event_accumulator.TENSORS: 0})
    acc.Reload()
    lines = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    if [l["step"] for l in lines] != [0, 1, 2, 3, 4]:
        raise SystemExit(f"FAIL: metrics.jsonl steps {[l['step'] for l in lines]}")
    expected = {}
    for line in lines:
        for tag, value in flatten(line).items():
            expected.setdefault(tag, []).append((line["step"], value))
    tags = set(acc.Tags()["scalars"])
    if tags != set(expected):
        raise SystemExit(f"FAIL: scalar tags differ: only in TensorBoard {sorted(tags - set(expected))}, "
                         f"only in metrics.jsonl {sorted(set(expected) - tags)}")
    compared = 0
    for tag, points in expected.items():
        events = [(e.step, e.value) for e in acc.Scalars(tag)]
        if [s for s, _ in events] != [s for s, _ in points]:
            raise SystemExit(f"FAIL: {tag}: steps {[s for s, _ in events]} in TensorBoard, "
                             f"{[s for s, _ in points]} in metrics.jsonl (resume should leave one clean curve)")
        for (_, got), (step, want) in zip(events, points):
            if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-30) and not (math.isinf(got) and want > 3e38):
                raise SystemExit(f"FAIL: {tag} at step {step}: TensorBoard {got}, metrics.jsonl {want}")
            compared += 1
    texts = acc.Tags().get("tensors", [])
    config = [t for t in texts if t.startswith("config")]
    if not config:
        raise SystemExit(f"FAIL: no config text summary (tensor tags {texts})")
    text = acc.Tensors(config[0])[0].tensor_proto.string_val[0].decode()
    if "prompts_per_step: 4" not in text:
        raise SystemExit(f"FAIL: the config text summary does not hold the resolved config: {text[:200]}")
    print(f"TensorBoard: {len(expected)} tags, {compared} scalars equal metrics.jsonl over steps 0-4 after a resume "
          f"from step 2 (steps 3-4 purged and redone), config text summary present")


if __name__ == "__main__":
    main()
