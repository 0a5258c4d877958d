"""Data-parallel `anchor-rl train` under mpirun (docs/design.md §7).

1. 2 ranks == 1 rank: the same global batch and seed give the same weights after 3 steps
   (max abs difference <= 1e-5, printed) and the same metrics (to 1e-4), with attention credit
   on (coupled, layers auto, sinks excluded) and dynamic sampling on; again with PPO epochs x
   mini-batches (rows of a mini-batch spread over ranks), a KL penalty, thought anchors, the
   random baseline, forking tokens (an entropy threshold over every rank's tokens), and the credit
   map built inside the training forward (per-sequence ranking), and LoRA adapters with a KL penalty.
2. Exact resume on 2 ranks: 4 steps straight == 2 steps + --resume latest, bit for bit; a
   2-rank checkpoint resumed on 1 rank continues like the 2-rank run (<= 1e-5).
3. Faults end the job, never hang it: a rank that throws, a rank killed with SIGKILL mid-step,
   and a rank that stops responding (collective timeout) each make mpirun exit non-zero within
   60 s with a message naming the rank.
Usage: check_data_parallel.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from run_files import checkpoint_bytes, checkpoint_tensors, max_abs_difference, metrics  # noqa: E402
LAUNCH = os.path.join(ROOT, "scripts", "launch", "launch_mpi.sh")
SMALL = ["--set", "train.steps=3", "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
         "--set", "algo.micro_batch_size=6", "--set", "data.eval_limit=6", "--set", "train.eval_every=2",
         "--set", "model.threads=1"]


def run(cmd, env=None, expect_ok=True, timeout=240):
    start = time.time()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    if expect_ok and out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {out.returncode}")
    return out, time.time() - start


def train(binary, ranks, run_dir, extra, env=None, expect_ok=True):
    cmd = [binary, "train", "configs/demo.yaml", "--run-dir", run_dir] + SMALL + extra
    if ranks > 0:
        cmd = [LAUNCH, "-np", str(ranks)] + cmd
    return run(cmd, env=env, expect_ok=expect_ok)


def close(x, y, tol, path=""):
    """Metrics equal up to `tol` (relative) on floats, exactly elsewhere."""
    if isinstance(x, dict):
        if set(x) != set(y):
            return f"{path}: keys {sorted(set(x) ^ set(y))} differ"
        for k in x:
            bad = close(x[k], y[k], tol, f"{path}.{k}")
            if bad:
                return bad
        return None
    if isinstance(x, float) or isinstance(y, float):
        return None if abs(x - y) <= tol * max(1.0, abs(x), abs(y)) else f"{path}: {x} vs {y}"
    return None if x == y else f"{path}: {x} vs {y}"


def check_equivalence(binary, scratch):
    variants = {
        "coupled-dynamic": ["--set", "credit.strategy=coupled", "--set", "credit.layers=auto",
                            "--set", "credit.auto_layer_count=2", "--set", "algo.dynamic_sampling=true"],
        "ppo-minibatches-kl-thought-anchor": ["--set", "algo.ppo_epochs=2", "--set", "algo.mini_batches=2",
                                              "--set", "algo.kl_coef=0.05", "--set", "credit.strategy=thought_anchor",
                                              "--set", "credit.proximity=1"],
        "random-baseline-rloo": ["--set", "credit.strategy=random", "--set", "algo.advantage=rloo",
                                 "--set", "algo.dynamic_sampling=false"],
        # forking_tokens ranks entropies over the whole step batch: every rank's tokens are gathered.
        "forking-tokens": ["--set", "credit.strategy=forking_tokens", "--set", "algo.dynamic_sampling=false"],
        # Per-sequence ranking: from step 2 the credit map is built inside the training forward,
        # micro-batch by micro-batch, which must not depend on how rows are split over ranks.
        "coupled-in-training-forward": ["--set", "credit.strategy=coupled", "--set", "credit.head_ranking=sequence",
                                        "--set", "credit.layers=auto", "--set", "credit.auto_layer_count=2"],
        # LoRA: only the adapters are broadcast and reduced; the KL reference is the base (adapters off).
        "lora-kl-coupled": ["--set", "model.lora.enabled=true", "--set", "model.lora.rank=4",
                            "--set", "optim.lr=1e-3", "--set", "algo.kl_coef=0.05", "--set", "credit.strategy=coupled"],
    }
    for name, extra in variants.items():
        one, two = os.path.join(scratch, name + "-1rank"), os.path.join(scratch, name + "-2ranks")
        for d in (one, two):
            shutil.rmtree(d, ignore_errors=True)
        train(binary, 0, one, extra)
        train(binary, 2, two, extra)
        diff = max_abs_difference(checkpoint_tensors(one, 3), checkpoint_tensors(two, 3))
        if not diff <= 1e-5:
            raise SystemExit(f"FAIL: {name}: weights after 3 steps differ by {diff:.3g} between 1 and 2 ranks")
        for a, b in zip(metrics(one), metrics(two)):
            bad = close(a, b, 1e-4)
            if bad:
                raise SystemExit(f"FAIL: {name}: metrics of step {a['step']} differ between 1 and 2 ranks: {bad}")
        print(f"{name}: 2 ranks == 1 rank after 3 steps (max abs weight difference {diff:.2e}, metrics equal)")


def check_resume(binary, scratch):
    extra = ["--set", "train.steps=4", "--set", "credit.strategy=coupled", "--set", "credit.layers=auto",
             "--set", "credit.auto_layer_count=2"]
    straight, resumed, one = (os.path.join(scratch, n) for n in ("resume-straight", "resume-resumed", "resume-1rank"))
    for d in (straight, resumed, one):
        shutil.rmtree(d, ignore_errors=True)
    train(binary, 2, straight, extra)
    train(binary, 2, resumed, extra + ["--stop-after-step", "2"])
    shutil.copytree(resumed, one)
    train(binary, 2, resumed, extra + ["--resume", "latest"])
    ckpt = lambda d: os.path.join(d, "checkpoints", "step-00000004")
    for file in ("model.safetensors", "trainer_state.safetensors", "trainer_state.json"):
        with open(os.path.join(ckpt(straight), file), "rb") as f, open(os.path.join(ckpt(resumed), file), "rb") as g:
            if f.read() != g.read():
                raise SystemExit(f"FAIL: 2-rank resume: {file} of step 4 differs from the straight run")
    if metrics(straight) != metrics(resumed):
        raise SystemExit("FAIL: 2-rank resume: metrics differ from the straight run")
    print("2-rank resume: 4 straight steps == 2 + resume, bit for bit")
    out, _ = train(binary, 0, one, extra + ["--resume", "latest"])
    diff = max_abs_difference(checkpoint_tensors(straight, 4), checkpoint_tensors(one, 4))
    if not diff <= 1e-5:
        raise SystemExit(f"FAIL: a 2-rank checkpoint resumed on 1 rank ends {diff:.3g} away from the 2-rank run")
    print(f"2-rank checkpoint resumed on 1 rank: within {diff:.2e} of the 2-rank run")


def check_faults(binary, scratch):
    cases = {
        "throw": (["rank 1 of 2", "injected error at step 2"], []),
        "kill": (["rank 1"], []),
        "hang": (["rank 0 of 2", "did not complete within 5 s"], ["--set", "distributed.timeout_seconds=5"]),
    }
    for kind, (needles, extra) in cases.items():
        run_dir = os.path.join(scratch, "fault-" + kind)
        shutil.rmtree(run_dir, ignore_errors=True)
        env = dict(os.environ, ANCHOR_TEST_FAULT=f"1:2:{kind}")
        try:
            out, seconds = train(binary, 2, run_dir, extra, env=env, expect_ok=False)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"FAIL: fault {kind}: the job hung")
        text = out.stdout + out.stderr
        if out.returncode == 0:
            raise SystemExit(f"FAIL: fault {kind}: mpirun exited 0\n{text[-3000:]}")
        if seconds > 60:
            raise SystemExit(f"FAIL: fault {kind}: took {seconds:.0f} s to end the job (limit 60)")
        missing = [n for n in needles if n not in text]
        if missing:
            raise SystemExit(f"FAIL: fault {kind}: output lacks {missing}\n{text[-3000:]}")
        print(f"fault {kind} on rank 1 at step 2: job ended in {seconds:.1f} s with exit {out.returncode}")


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    check_equivalence(binary, scratch)
    check_resume(binary, scratch)
    check_faults(binary, scratch)


if __name__ == "__main__":
    main()
