"""External rewards end to end (rewards/README.md), on the demo model and countdown data.

1. Built-in vs external: the demo trained for 20 steps with the built-in `countdown` and with
   the Python countdown example as an external program gives bit-identical final weights,
   optimizer state and metrics; the program compares its score with the built-in's on every
   row of every batch (tests/python/compare_countdown_rewards.py): 0 mismatches.
2. Exact resume with an external reward: 10 steps, stop, --resume latest == 20 straight.
3. Data parallel: 2 ranks under mpirun, each with its own reward process, == 1 rank.
4. HTTP: the same example served over loopback HTTP gives the same weights as the built-in.
5. run.json records the program (command and the XXH3 of its files).
Usage: check_external_reward.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from run_files import checkpoint_bytes, first_difference, metrics  # noqa: E402
from reward_server import start_http_reward  # noqa: E402
LAUNCH = os.path.join(ROOT, "scripts", "launch", "launch_mpi.sh")
STEPS = 20
COMMON = ["--set", f"train.steps={STEPS}", "--set", "data.eval=", "--set", "checkpoint.every=10",
          "--set", "logging.tensorboard=false"]


def run(cmd, timeout=900):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited with {out.returncode}")
    return out


def external_config(scratch, name, component):
    path = os.path.join(scratch, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"base: {os.path.join(ROOT, 'configs', 'demo.yaml')}\n"
                f"reward:\n  components:\n    - {json.dumps(component)}\n")
    return path


def comparable(run_dir):
    """Metrics without timings and without the per-component names (countdown vs external)."""
    lines = metrics(run_dir)
    for line in lines:
        line.pop("reward_components", None)
    return lines


def same_run(a, b, what):
    ma, mb = comparable(a), comparable(b)
    if ma != mb:
        x, y = first_difference(ma, mb)
        print("first:", x, "\nsecond:", y)
        raise SystemExit(f"FAIL: {what}: metrics differ")
    fa, fb = checkpoint_bytes(a, STEPS), checkpoint_bytes(b, STEPS)
    for name in fa:
        if name.endswith(".json"):  # the config hash differs with the reward's config, nothing else may
            x, y = json.loads(fa[name]), json.loads(fb[name])
            x.pop("config_hash"), y.pop("config_hash")
            same = x == y
        else:
            same = fa[name] == fb[name]
        if not same:
            raise SystemExit(f"FAIL: {what}: {name} of step {STEPS} differs")


def reward_share(run_dir):
    perf = [line["perf"] for line in metrics(run_dir, timings=True) if "perf" in line]
    reward = sum(p["reward_seconds"] for p in perf) / len(perf)
    step = sum(p["step_seconds"] for p in perf) / len(perf)
    return reward, step


def main():
    binary, scratch = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    dirs = {n: os.path.join(scratch, n) for n in ("builtin", "external", "resumed", "http", "dp1", "dp2")}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)

    # 1. Built-in vs external, every row compared.
    run([binary, "train", "configs/demo.yaml", "--run-dir", dirs["builtin"]] + COMMON)
    stats = os.path.join(scratch, "compare_stats.json")
    compare = f"python3 {ROOT}/tests/python/compare_countdown_rewards.py {binary} {stats}"
    cfg = external_config(scratch, "external", {"name": "external", "command": compare, "correctness": True})
    run([binary, "train", cfg, "--run-dir", dirs["external"]] + COMMON)
    with open(stats) as f:
        s = json.load(f)
    if s["rows"] == 0 or s["mismatches"] != 0:
        raise SystemExit(f"FAIL: Python countdown vs built-in: {s}")
    same_run(dirs["builtin"], dirs["external"], "built-in vs external countdown")
    print(f"built-in == external countdown: {s['rows']} rows in {s['batches']} batches, 0 mismatches "
          f"({s['correct']} correct); {STEPS} steps, final weights and optimizer state bit-identical")
    for name in ("builtin", "external"):
        r, step = reward_share(dirs[name])
        print(f"  {name}: reward {r * 1000:.1f} ms per step of {step:.2f} s ({100 * r / step:.1f}%)")

    # 5. run.json records the program.
    with open(os.path.join(dirs["external"], "run.json")) as f:
        record = json.load(f).get("external_rewards", [])
    script = f"{ROOT}/tests/python/compare_countdown_rewards.py"
    if not (record and record[0]["command"] == compare and re.fullmatch("[0-9a-f]{16}", record[0]["files"].get(script, ""))):
        raise SystemExit(f"FAIL: run.json's external_rewards: {record}")
    print(f"run.json: external_rewards records the command and xxh3 {record[0]['files'][script]} of the script")

    # 2. Exact resume.
    run([binary, "train", cfg, "--run-dir", dirs["resumed"], "--stop-after-step", str(STEPS // 2)] + COMMON)
    run([binary, "train", cfg, "--run-dir", dirs["resumed"], "--resume", "latest"] + COMMON)
    same_run(dirs["external"], dirs["resumed"], "external reward, resumed")
    print(f"external reward: {STEPS // 2} steps + --resume latest == {STEPS} straight, bit-identical")

    # 4. HTTP: the example served on a loopback port.
    server, url = start_http_reward(f"{ROOT}/rewards/examples/countdown_reward.py",
                                    os.path.join(scratch, "http_server.log"), ROOT)
    try:
        cfg_http = external_config(scratch, "http", {"name": "external", "url": url, "correctness": True})
        run([binary, "train", cfg_http, "--run-dir", dirs["http"]] + COMMON)
    finally:
        server.kill()
        server.wait()
    same_run(dirs["builtin"], dirs["http"], "built-in vs HTTP countdown")
    r, step = reward_share(dirs["http"])
    print(f"built-in == HTTP countdown ({url}): bit-identical; reward {r * 1000:.1f} ms per step of {step:.2f} s")

    # 3. Data parallel: each rank starts its own program (its rank in the stats file name).
    small = ["--set", "train.steps=3", "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
             "--set", "algo.micro_batch_size=6", "--set", "data.eval=", "--set", "model.threads=1",
             "--set", "checkpoint.every=3", "--set", "logging.tensorboard=false"]
    per_rank = f"python3 {ROOT}/tests/python/compare_countdown_rewards.py {binary} {stats}.rank$ANCHOR_REWARD_RANK"
    cfg_dp = external_config(scratch, "dp", {"name": "external", "command": per_rank, "correctness": True})
    run([binary, "train", cfg_dp, "--run-dir", dirs["dp1"]] + small)
    run([LAUNCH, "-np", "2", binary, "train", cfg_dp, "--run-dir", dirs["dp2"]] + small)
    for rank in (0, 1):
        with open(f"{stats}.rank{rank}") as f:
            s = json.load(f)
        if s["rows"] == 0 or s["mismatches"] != 0:
            raise SystemExit(f"FAIL: rank {rank}'s reward process: {s}")
    from safetensors.numpy import load_file
    import numpy as np
    a = load_file(os.path.join(dirs["dp1"], "checkpoints", "step-00000003", "model.safetensors"))
    b = load_file(os.path.join(dirs["dp2"], "checkpoints", "step-00000003", "model.safetensors"))
    diff = max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a)
    if diff > 1e-5:
        raise SystemExit(f"FAIL: 2 ranks vs 1 rank with an external reward: max weight difference {diff}")
    print(f"data parallel: 2 ranks (one reward process each) == 1 rank after 3 steps (max weight difference {diff:.2e})")


if __name__ == "__main__":
    main()
