"""Bad command lines as a new user types them: each exits 1 with a message that names the
problem (docs/running.md: "exit with code 1").
Usage: check_cli_errors.py ANCHOR_RL_BINARY
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = [
    (["trian", "configs/demo.yaml"], "unknown command 'trian'; did you mean 'train'?"),
    (["sfft"], "did you mean 'sft'?"),
    (["zzzzzz"], "unknown command 'zzzzzz' (commands: train, sft"),
    (["generate", "--model", "data/demo-model", "--prompt", "x", "--top-p", "2"], "--top-p: Value 2 not in range"),
    (["train"], "config"),
    (["train", "configs/demo.yaml", "--no-such-flag"], "--no-such-flag"),
    (["train", "configs/demo.yaml", "--set", "optim.lr=.inf"], "optim.lr must be a finite number"),
    (["train", "configs/demo.yaml", "--set", "rollout.max_new_tokens=-5"],
     "configs/demo.yaml: rollout.max_new_tokens: must be >= 1 (--set)"),
]


def check_long_prompts(binary):
    """A prompt longer than the model can answer: an error naming file:line, or skipped with a count."""
    import json
    import tempfile
    scratch = tempfile.mkdtemp(prefix="anchor_long_prompt_")
    with open(os.path.join(ROOT, "data", "countdown", "train.jsonl")) as f:
        first = json.loads(f.readline())
    long_row = dict(first, prompt="Numbers: 1 2 3. " * 20000)  # 320 000 characters, > 1024 positions
    data = os.path.join(scratch, "data.jsonl")
    with open(data, "w") as f:
        f.write(json.dumps(first) + "\n" + json.dumps(long_row) + "\n")
    run_dir = os.path.join(scratch, "run")
    unjudgeable = os.path.join(scratch, "no_target.jsonl")
    with open(unjudgeable, "w") as f:
        f.write(json.dumps(first) + "\n" + json.dumps({"prompt": "Numbers: 1 2 3.", "numbers": [1, 2, 3]}) + "\n")
    cases = [
        (["eval", "--model", "data/demo-model", "--data", unjudgeable], 1,
         f"{unjudgeable}:2: countdown reward: the row needs 'numbers' (a non-empty list of integers) and 'target'"),
        (["train", "configs/demo.yaml", "--set", f"data.train={unjudgeable}", "--run-dir", run_dir], 1,
         f"{unjudgeable}:2: countdown reward"),
        (["eval", "--model", "data/demo-model", "--data", data, "--limit", "2"], 1,
         f"{data}:2: the prompt has"),
        (["train", "configs/demo.yaml", "--set", f"data.train={data}", "--run-dir", run_dir], 1,
         "(the model's 1024 positions minus 48 new tokens); shorten it, or set data.too_long_prompts: skip"),
        (["train", "configs/demo.yaml", "--set", f"data.train={data}", "--set", "data.max_prompt_tokens=5",
          "--run-dir", run_dir], 1, f"{data}:1: the prompt has"),
        (["train", "configs/demo.yaml", "--set", f"data.train={data}", "--set", "data.too_long_prompts=skip",
          "--set", "data.eval=", "--set", "train.steps=1", "--set", "rollout.prompts_per_step=2",
          "--set", "rollout.samples_per_prompt=2", "--set", "algo.micro_batch_size=4", "--run-dir", run_dir], 0,
         f"{data}: skipped 1 of 2 prompts longer than 976 tokens"),
    ]
    for args, code, needle in cases:
        out = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
        text = out.stdout + out.stderr
        if out.returncode != code or needle not in text:
            raise SystemExit(f"FAIL: anchor-rl {' '.join(args)}: exit {out.returncode} (expected {code}), "
                             f"wanted {needle!r}\n{text[-3000:]}")
        print(f"long prompt: anchor-rl {args[0]} ... exit {code}, '{needle}'")


def main():
    binary = sys.argv[1]
    check_long_prompts(binary)
    for args, needle in CASES:
        out = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
        text = out.stdout + out.stderr
        if out.returncode != 1:
            raise SystemExit(f"FAIL: anchor-rl {' '.join(args)} exited {out.returncode}, expected 1\n{text}")
        if needle not in text:
            raise SystemExit(f"FAIL: anchor-rl {' '.join(args)}: output lacks {needle!r}\n{text}")
        print(f"anchor-rl {' '.join(args)}: exit 1, '{needle}'")
    ok = subprocess.run([binary, "--help"], cwd=ROOT, capture_output=True, text=True)
    if ok.returncode != 0:
        raise SystemExit(f"FAIL: anchor-rl --help exited {ok.returncode}")
    print("anchor-rl --help: exit 0")


if __name__ == "__main__":
    main()
