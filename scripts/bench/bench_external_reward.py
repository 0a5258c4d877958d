"""What an external reward costs in a GRPO step: the same config trained for a few steps with
its built-in reward, with the same reward as an external program over a subprocess, and over
loopback HTTP. Prints the reward time per step (metrics.jsonl perf.reward_seconds: scoring a
rank's rows, including the exchange), the step time and the reward's share of the step, and
checks that the three runs saw the same rewards. Prints numbers, asserts nothing.

  scripts/bench/bench_external_reward.py                                   # the demo (countdown)
  scripts/bench/bench_external_reward.py --config configs/smollm2_multistep.yaml \\
      --program rewards/examples/math_answer_reward.py --sub-scores marked --steps 3   # SmolLM2

Run with the project venv's Python from the repository root. The first step is left out of
the averages (the program's start-up and the first batch).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from reward_server import start_http_reward  # noqa: E402
from run_files import metrics  # noqa: E402


def train(binary, config, run_dir, steps, extra):
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [binary, "train", config, "--run-dir", run_dir, "--set", f"train.steps={steps}", "--set", "data.eval=",
           "--set", "checkpoint.every=0", "--set", "logging.tensorboard=false"] + extra
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return [line for line in metrics(run_dir, timings=True) if "perf" in line]  # the steps (not step 0's line)


def with_reward(scratch, name, config, component):
    path = os.path.join(scratch, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"base: {os.path.abspath(config)}\nreward:\n  components:\n    - {json.dumps(component)}\n")
    return path


def summary(lines):
    timed = lines[1:] or lines  # step 1 holds the program's start-up
    reward = sum(l["perf"]["reward_seconds"] for l in timed) / len(timed)
    step = sum(l["perf"]["step_seconds"] for l in timed) / len(timed)
    rows = sum(l["groups_seen"] for l in timed) / len(timed)
    return reward, step, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anchor-rl"))
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--program", default="rewards/examples/countdown_reward.py",
                    help="the external program that re-implements the config's built-in reward")
    ap.add_argument("--sub-scores", nargs="*", default=[], help="sub-scores the program reports (declared in the component)")
    ap.add_argument("--steps", type=int, default=11)
    ap.add_argument("--scratch", default=os.path.join(ROOT, "runs", "bench_external_reward"))
    ap.add_argument("--set", action="append", default=[], help="extra --set overrides for every run")
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    extra = [x for s in args.set for x in ("--set", s)]
    program = os.path.abspath(args.program)
    results = {}
    results["built-in"] = train(args.binary, args.config, os.path.join(args.scratch, "builtin"), args.steps, extra)
    cfg = with_reward(args.scratch, "subprocess", args.config,
                      {"name": "external", "command": f"python3 {program}", "correctness": True,
                       "sub_scores": args.sub_scores})
    results["subprocess"] = train(args.binary, cfg, os.path.join(args.scratch, "subprocess"), args.steps, extra)
    server, url = start_http_reward(program, os.path.join(args.scratch, "http_server.log"), ROOT)
    try:
        cfg = with_reward(args.scratch, "http", args.config,
                          {"name": "external", "url": url, "correctness": True, "sub_scores": args.sub_scores})
        results["http"] = train(args.binary, cfg, os.path.join(args.scratch, "http"), args.steps, extra)
    finally:
        server.kill()
        server.wait()

    base_reward, _, _ = summary(results["built-in"])
    print(f"{args.config}, {args.steps} steps (step 1 left out), program {args.program}")
    print(f"{'reward':<12} {'reward ms/step':>15} {'x built-in':>11} {'step s':>8} {'share of step':>14} {'groups/step':>12}")
    for name, lines in results.items():
        reward, step, groups = summary(lines)
        print(f"{name:<12} {reward * 1000:>15.1f} {reward / base_reward:>11.1f} {step:>8.2f} {100 * reward / step:>13.2f}% "
              f"{groups:>12.1f}")
    same = all([l.get("reward_mean") for l in lines] == [l.get("reward_mean") for l in results["built-in"]]
               for lines in results.values())
    print(f"same reward_mean at every step in all three runs: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
