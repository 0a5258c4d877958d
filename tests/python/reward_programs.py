"""External reward programs for the tests (tests/unit/test_external_reward.cpp): one that
behaves and one per fault the trainer must name. Usage: reward_programs.py MODE [ARG] [--http PORT]

  length         score = characters of the completion; sub-score `tokens`; a note per row
  exit_after N   answers N batches, then exits with code 3 (mid-run: the trainer restarts it)
  dies_on_restart STATE  answers one batch, then exits; every restart exits at its first batch
  sleep S        sleeps S seconds before every answer (a timeout)
  garbage        answers a line that is not JSON
  short          answers one score too few
  nan            answers a NaN score for row 0 (through the helper: the string "NaN")
  raise          the reward function raises (an error answer / HTTP 500)
  two_lines      answers two lines per batch
  print          prints to stdout inside the reward function (the helper must keep stdout clean)
  stderr_exit    writes a reason to stderr and exits with code 5 before reading anything
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "rewards"))
from anchor_reward import serve  # noqa: E402


def length_reward(row):
    return {"score": float(len(row["completion"])), "sub_scores": {"tokens": row["completion_tokens"]},
            "note": f"{row['finish_reason']} {row['example'].get('id', '')}".strip()}


def raw_loop(answer):
    for n, line in enumerate(sys.stdin):
        rows = json.loads(line)["rows"]
        sys.stdout.write(answer(n, rows))
        sys.stdout.flush()


def main():
    args = [a for a in sys.argv[1:]]
    mode = args[0]
    if mode == "length":
        serve(length_reward)
    elif mode == "exit_after":
        limit = int(args[1])
        count = [0]

        def reward(rows):
            if count[0] == limit:
                sys.exit(3)
            count[0] += 1
            return [float(len(r["completion"])) for r in rows]
        serve(reward, batched=True)
    elif mode == "dies_on_restart":
        state = args[1]
        first_process = not os.path.exists(state)
        open(state, "a").close()
        served = [0]

        def reward(rows):
            if not first_process or served[0] == 1:
                print("giving up on purpose", file=sys.stderr, flush=True)
                sys.exit(4)
            served[0] += 1
            return [1.0] * len(rows)
        serve(reward, batched=True)
    elif mode == "sleep":
        seconds = float(args[1])

        def reward(row):
            time.sleep(seconds)
            return 1.0
        serve(reward)
    elif mode == "garbage":
        raw_loop(lambda n, rows: "this is not json\n")
    elif mode == "short":
        raw_loop(lambda n, rows: json.dumps({"scores": [1.0] * (len(rows) - 1)}) + "\n")
    elif mode == "two_lines":
        raw_loop(lambda n, rows: (json.dumps({"scores": [1.0] * len(rows)}) + "\n") * 2)
    elif mode == "nan":
        serve(lambda row: float("nan") if row["example"].get("id") == 0 else 1.0)
    elif mode == "raise":
        def reward(row):
            raise ValueError("no verifier for this row")
        serve(reward)
    elif mode == "print":
        def reward(row):
            print("debugging output on stdout")
            return 2.0
        serve(reward)
    elif mode == "stderr_exit":
        print("cannot load the verifier model: file missing", file=sys.stderr, flush=True)
        sys.exit(5)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
