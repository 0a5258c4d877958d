"""Reading what `anchor-rl train` / `anchor-rl sft` write into a run directory, shared by the
scripts and the end-to-end tests (import it after putting scripts/lib on sys.path).

  metrics(run_dir, timings=False)   the metrics.jsonl lines as dicts; without the wall-clock
                                    "perf" object unless timings=True (it differs between runs)
  checkpoint_dir(run_dir, step)     RUN_DIR/checkpoints/step-XXXXXXXX
  checkpoint_bytes(run_dir, step)   the bytes of the files that make a resume exact: model
                                    weights, optimizer moments and trainer state
  first_difference(a, b)            the first pair of metrics lines that differ, or None
  checkpoint_tensors(run_dir, step, name="model.safetensors")   a checkpoint file's tensors (numpy)
  max_abs_difference(a, b)          the largest |a - b| over same-named tensors (float64)
"""
import json
import os

STATE_FILES = ("model.safetensors", "trainer_state.safetensors", "trainer_state.json")


def metrics(run_dir, timings=False):
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    lines = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            if not timings:
                d.pop("perf", None)
            lines.append(d)
    return lines


def checkpoint_dir(run_dir, step):
    return os.path.join(run_dir, "checkpoints", f"step-{step:08d}")


def weights_file(checkpoint):
    """The weights of a checkpoint directory: model.safetensors, or a LoRA checkpoint's adapters."""
    lora = os.path.exists(os.path.join(checkpoint, "adapter_model.safetensors"))
    return "adapter_model.safetensors" if lora else "model.safetensors"


def checkpoint_bytes(run_dir, step, names=STATE_FILES):
    d = checkpoint_dir(run_dir, step)
    out = {}
    if names is STATE_FILES:
        names = tuple(weights_file(d) if n == "model.safetensors" else n for n in names)
    for name in names:
        with open(os.path.join(d, name), "rb") as f:
            out[name] = f.read()
    return out


def first_difference(a, b):
    """The first (line of a, line of b) that differ, or None; a missing line counts as None."""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            return x, y
    return None


def checkpoint_tensors(run_dir, step, name="model.safetensors"):
    """A checkpoint's tensors: the model's, or a LoRA checkpoint's adapters."""
    from safetensors.numpy import load_file
    d = checkpoint_dir(run_dir, step)
    if name == "model.safetensors":
        name = weights_file(d)
    return load_file(os.path.join(d, name))


def max_abs_difference(a, b):
    """The largest |a - b| over the tensors of two checkpoints; their names must agree."""
    import numpy as np
    if set(a) != set(b):
        raise SystemExit(f"FAIL: tensor names differ: {sorted(set(a) ^ set(b))[:5]}")
    return max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a)
