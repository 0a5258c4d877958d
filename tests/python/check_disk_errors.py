"""A checkpoint write that fails (here: the file size limit, `ulimit -f`) is an error naming the
file; the earlier checkpoint and `latest` stay as they were, no temporary directory is left,
and the run resumes from the earlier checkpoint (reliability issue, item 3).
Usage: check_disk_errors.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import os
import resource
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = ["train", "configs/demo.yaml", "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
        "--set", "algo.micro_batch_size=8", "--set", "data.eval=", "--set", "checkpoint.every=1"]


def limit_file_size():
    # 4 MB: the 0.73M-parameter model file (2.9 MB) fits, the AdamW state (5.9 MB) does not.
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    run_dir = os.path.join(scratch, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(scratch, exist_ok=True)
    subprocess.run([binary] + ARGS + ["--set", "train.steps=1", "--run-dir", run_dir], cwd=ROOT, check=True,
                   capture_output=True)
    ckpts = os.path.join(run_dir, "checkpoints")
    before = sorted(os.listdir(ckpts))
    out = subprocess.run([binary] + ARGS + ["--set", "train.steps=3", "--run-dir", run_dir, "--resume", "latest"],
                         cwd=ROOT, capture_output=True, text=True, preexec_fn=limit_file_size)
    text = out.stdout + out.stderr
    if out.returncode != 1:
        raise SystemExit(f"FAIL: exit {out.returncode} (expected 1) when the checkpoint cannot be written\n{text[-3000:]}")
    for needle in ("checkpoint of step 2 not written", "trainer_state.safetensors: write failed (File too large",
                   "the earlier checkpoints and 'latest'"):
        if needle not in text:
            raise SystemExit(f"FAIL: the error lacks {needle!r}\n{text[-3000:]}")
    after = sorted(os.listdir(ckpts))
    if after != before or open(os.path.join(ckpts, "latest")).read().strip() != "step-00000001":
        raise SystemExit(f"FAIL: checkpoints changed by the failed write: {before} -> {after}")
    subprocess.run([binary] + ARGS + ["--set", "train.steps=3", "--run-dir", run_dir, "--resume", "latest"],
                   cwd=ROOT, check=True, capture_output=True)
    if open(os.path.join(ckpts, "latest")).read().strip() != "step-00000003":
        raise SystemExit("FAIL: resuming after the failed write did not reach step 3")
    print("file size limit during the step-2 checkpoint: exit 1 naming trainer_state.safetensors (File too large); "
          f"checkpoints unchanged ({before}), no temporary directory; the resume from step 1 reached step 3")


if __name__ == "__main__":
    main()
