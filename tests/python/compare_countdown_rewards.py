"""An external reward program for check_external_reward.py: answers with the Python countdown
example's scores (rewards/examples/countdown_reward.py) and, for every row of every batch,
compares them with the built-in `countdown` (through `anchor-rl reward-server`). Tallies go to
STATS (JSON, rewritten after each batch): rows, mismatches, the first mismatching row.
Usage: compare_countdown_rewards.py ANCHOR_RL STATS
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "rewards"))
sys.path.insert(0, os.path.join(ROOT, "rewards", "examples"))
from anchor_reward import serve  # noqa: E402
import countdown_reward  # noqa: E402

binary, stats_path = sys.argv[1], sys.argv[2]
builtin = subprocess.Popen([binary, "reward-server", "--reward", "countdown"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
stats = {"batches": 0, "rows": 0, "correct": 0, "mismatches": 0, "first_mismatch": None}


def reward(rows):
    builtin.stdin.write(json.dumps({"protocol": 1, "rows": rows}) + "\n")
    builtin.stdin.flush()
    answer = json.loads(builtin.stdout.readline())
    if "error" in answer:
        raise RuntimeError(answer["error"])
    ours = [countdown_reward.reward(row) for row in rows]
    for row, a, b in zip(rows, ours, answer["scores"]):
        stats["rows"] += 1
        stats["correct"] += a == 1.0
        if a != b:
            stats["mismatches"] += 1
            stats["first_mismatch"] = stats["first_mismatch"] or {"completion": row["completion"], "python": a,
                                                                  "builtin": b, "example": row["example"]}
    stats["batches"] += 1
    with open(stats_path + ".tmp", "w") as f:
        json.dump(stats, f)
    os.replace(stats_path + ".tmp", stats_path)
    return ours


serve(reward, batched=True)
