"""Checkpoint manifests end to end: `anchor-rl checkpoint verify` names each corruption kind
(flipped byte, truncated file, missing file, corrupt JSON) and exits 1; `--resume latest`
falls back to the newest intact checkpoint, says how many steps are lost, and the redone steps
give the same weights as the first time; no intact checkpoint is a refusal listing each.

usage: check_checkpoint_integrity.py ANCHOR_RL SCRATCH_DIR
"""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(binary, args, expect_rc=0):
    out = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != expect_rc:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"FAIL: anchor-rl {' '.join(args)} exited with {out.returncode}, expected {expect_rc}")
    return out.stdout + out.stderr


def expect(text, needle, what):
    if needle not in text:
        sys.stderr.write(text)
        raise SystemExit(f"FAIL: {what}: expected '{needle}' in the output above")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def flip_byte(path, offset_from_end):
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        b = f.read(1)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes([b[0] ^ 0x40]))  # an exponent bit of the last float


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    run_dir = os.path.join(scratch, "run")
    train = ["train", "configs/demo.yaml", "--run-dir", run_dir, "--set", "train.steps=4", "--set", "data.eval=",
             "--set", "checkpoint.every=1", "--set", "checkpoint.keep_last=4", "--set", "rollout.prompts_per_step=8"]
    run(binary, train)
    ckpt = lambda step: os.path.join(run_dir, "checkpoints", f"step-{step:08d}")
    reference = {n: read(os.path.join(ckpt(4), n)) for n in ("model.safetensors", "trainer_state.safetensors")}
    out = run(binary, ["checkpoint", "verify", run_dir])
    expect(out, "step-00000004: intact (6 files", "verify of an intact run")
    expect(out, "--resume latest would use: step-00000004", "verify of an intact run")

    flip_byte(os.path.join(ckpt(4), "model.safetensors"), 2)
    with open(os.path.join(ckpt(3), "trainer_state.safetensors"), "r+b") as f:
        f.truncate(os.path.getsize(f.name) - 100)
    out = run(binary, ["checkpoint", "verify", run_dir], expect_rc=1)
    expect(out, "model.safetensors: checksum", "flipped byte")
    expect(out, "(truncated)", "truncated file")
    expect(out, "2 of 4 checkpoints", "verify summary")
    expect(out, "--resume latest would use: step-00000002", "verify's resume choice")
    out = run(binary, ["checkpoint", "verify", ckpt(4)], expect_rc=1)
    expect(out, "DAMAGED", "verify of one checkpoint")

    # Fallback: steps 3 and 4 are redone from step 2 and end where the first run ended.
    out = run(binary, train + ["--resume", "latest"])
    expect(out, "falling back to step-00000002", "fallback")
    expect(out, "2 step(s) since it are lost", "fallback")
    for name, data in reference.items():
        if read(os.path.join(ckpt(4), name)) != data:
            raise SystemExit(f"FAIL: {name} after the fallback resume differs from the first run's step 4")
    run(binary, ["checkpoint", "verify", run_dir])
    print("fallback: steps 3-4 redone from step-00000002, final weights and optimizer state identical")

    # An explicitly named damaged checkpoint is refused; so is a run with no intact checkpoint.
    os.remove(os.path.join(ckpt(1), "config.json"))
    with open(os.path.join(ckpt(2), "trainer_state.json"), "r+b") as f:
        f.seek(0)
        f.write(b"[")
    out = run(binary, train + ["--resume", ckpt(1)], expect_rc=1)
    expect(out, "config.json: missing", "explicit damaged checkpoint")
    for step in (3, 4):
        flip_byte(os.path.join(ckpt(step), "trainer_state.json"), 3)
    out = run(binary, train + ["--resume", "latest"], expect_rc=1)
    expect(out, "no intact checkpoint", "nothing intact")
    for needle in ("step-00000001: config.json: missing", "step-00000002: trainer_state.json: checksum",
                   "step-00000004: trainer_state.json: checksum"):
        expect(out, needle, "nothing intact")
    print("verify names flipped / truncated / missing / corrupt-JSON files; nothing intact is refused")


if __name__ == "__main__":
    main()
