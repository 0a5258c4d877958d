"""Generates the demo's synthetic reasoning task: countdown with three numbers.

Each problem gives three numbers and a target reachable as (a op b) op c with + - * and
integer intermediate results; the SFT file also holds one worked solution written as a short
chain of thought:

    prompt:   "Numbers: 7 3 9. Target: 30.\n"
    response: "7 * 3 = 21. 21 + 9 = 30. Answer: (7 * 3) + 9\n"

Any correct expression earns the reward (rewards/countdown.cpp), not only the one written here.
Usage: make_countdown_data.py OUT_DIR [--train 12000 --eval 400 --seed 0]
Writes OUT_DIR/{sft,train,eval}.jsonl; sft and train share prompts, eval is disjoint.
"""
import argparse
import json
import os
import random

OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}


def make_problem(rng):
    while True:
        a, b, c = (rng.randint(1, 20) for _ in range(3))
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        first = OPS[op1](a, b)
        target = OPS[op2](first, c)
        if first < 0 or not (0 < target <= 200):
            continue
        numbers = [a, b, c]
        rng.shuffle(numbers)
        prompt = f"Numbers: {' '.join(map(str, numbers))}. Target: {target}.\n"
        response = f"{a} {op1} {b} = {first}. {first} {op2} {c} = {target}. Answer: ({a} {op1} {b}) {op2} {c}\n"
        return {"prompt": prompt, "numbers": numbers, "target": target, "answer": str(target)}, response


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=12000)
    ap.add_argument("--eval", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    seen = set()
    rows = []
    while len(rows) < args.train + args.eval:
        row, response = make_problem(rng)
        key = (tuple(sorted(row["numbers"])), row["target"])
        if key in seen:
            continue
        seen.add(key)
        rows.append((row, response))
    train, held_out = rows[:args.train], rows[args.train:]
    with open(os.path.join(args.out_dir, "sft.jsonl"), "w") as f:
        for row, response in train:
            f.write(json.dumps({"prompt": row["prompt"], "response": response}) + "\n")
    for name, part in (("train", train), ("eval", held_out)):
        with open(os.path.join(args.out_dir, name + ".jsonl"), "w") as f:
            for row, _ in part:
                f.write(json.dumps(row) + "\n")
    print(f"wrote {len(train)} train / {len(held_out)} eval problems to {args.out_dir}")


if __name__ == "__main__":
    main()
