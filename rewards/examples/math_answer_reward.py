"""Math answers judged by anchor-rl's own extraction (`#### N`, then \\boxed{...}, then the last
number; numeric equivalence), reached through the CLI (`anchor-rl reward-server`), plus what a
Python program adds on top: a sub-score `marked` (1 when the response commits to its answer
with "####" or \\boxed{}) and a note per row (the number it answered).

    reward:
      components:
        - {name: external, command: "python3 rewards/examples/math_answer_reward.py",
           sub_scores: [marked], correctness: true}

The anchor-rl executable: $ANCHOR_RL, else build/anchor-rl of this checkout.
"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from anchor_reward import serve  # noqa: E402

ANCHOR_RL = os.environ.get("ANCHOR_RL", os.path.join(HERE, "..", "..", "build", "anchor-rl"))
# The built-in verifier as a long-lived child: one line per batch, as this program gets them.
server = subprocess.Popen([ANCHOR_RL, "reward-server", "--reward", "math_answer"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def builtin_scores(rows):
    server.stdin.write(json.dumps({"protocol": 1, "rows": rows}) + "\n")
    server.stdin.flush()
    line = server.stdout.readline()
    if not line:
        raise RuntimeError(f"{ANCHOR_RL} reward-server ended (exit code {server.wait()})")
    answer = json.loads(line)
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["scores"]


def reward(rows):
    results = []
    for row, score in zip(rows, builtin_scores(rows)):
        text = row["completion"]
        marked = "####" in text or "\\boxed{" in text
        numbers = LAST_NUMBER.findall(text)
        results.append({"score": score, "sub_scores": {"marked": float(marked)},
                        "note": f"answered {numbers[-1]}" if numbers else "no number"})
    return results


if __name__ == "__main__":
    serve(reward, batched=True)
