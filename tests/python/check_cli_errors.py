"""Bad command lines as a new user types them: each exits 1 with a message that names the
problem (README: "exit with code 1").
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


def main():
    binary = sys.argv[1]
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
