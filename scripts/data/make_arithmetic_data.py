"""Generates synthetic arithmetic word problems for chat models (SmolLM2 and the like).

Each row is a chat conversation with one user turn and the numeric answer, judged by the
`math_answer` reward (the last number of the response, or a \\boxed{} / #### answer):

    {"messages": [{"role": "user", "content": "Tom has 17 apples. He buys 25 more. How many
      apples does Tom have now?"}], "answer": "42"}

Problems combine two or three steps of + - * with small whole numbers (--max-value); train and
eval are disjoint. Deterministic for a seed.
Usage: make_arithmetic_data.py OUT_DIR [--train 4000 --eval 400 --steps 1,2 --max-value 50 --seed 0]
Writes OUT_DIR/{train,eval}.jsonl.
"""
import argparse
import json
import os
import random

NAMES = ["Tom", "Anna", "Li", "Sara", "Omar", "Maya", "Ivan", "Zoe", "Ken", "Lena"]
ITEMS = ["apples", "books", "coins", "marbles", "pencils", "stickers", "cookies", "stamps", "cards", "shells"]


def step_text(rng, name, item, value, op, x):
    """One sentence that applies `op x` to the running count; returns (text, new value)."""
    if op == "+":
        return rng.choice([f"{name} buys {x} more {item}.", f"A friend gives {name} {x} {item}.",
                           f"{name} finds {x} more {item}."]), value + x
    if op == "-":
        return rng.choice([f"{name} gives away {x} {item}.", f"{name} loses {x} {item}.",
                           f"{name} uses {x} of the {item}."]), value - x
    return rng.choice([f"Then the number of {item} becomes {x} times as large.",
                       f"{name} then has {x} times as many {item} as before."]), value * x


def make_problem(rng, steps, max_value):
    while True:
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        value = rng.randint(2, max_value)
        sentences = [f"{name} has {value} {item}."]
        for _ in range(rng.choice(steps)):
            op = rng.choice("++--*")
            x = rng.randint(2, 5) if op == "*" else rng.randint(1, max_value)
            text, new_value = step_text(rng, name, item, value, op, x)
            if new_value < 0 or new_value > 1000:
                break
            sentences.append(text)
            value = new_value
        else:
            question = " ".join(sentences) + f" How many {item} does {name} have now?"
            return {"messages": [{"role": "user", "content": question}], "answer": str(value)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--eval", type=int, default=400)
    ap.add_argument("--steps", default="1,2", help="comma-separated numbers of operations per problem")
    ap.add_argument("--max-value", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    steps = [int(s) for s in args.steps.split(",")]
    seen, rows = set(), []
    while len(rows) < args.train + args.eval:
        row = make_problem(rng, steps, args.max_value)
        key = row["messages"][0]["content"]
        if key in seen:
            continue
        seen.add(key)
        rows.append(row)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, part in (("train", rows[:args.train]), ("eval", rows[args.train:])):
        with open(os.path.join(args.out_dir, name + ".jsonl"), "w") as f:
            for r in part:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
