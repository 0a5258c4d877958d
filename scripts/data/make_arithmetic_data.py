"""Generates synthetic arithmetic word problems for chat models (SmolLM2 and the like).

Each row is a chat conversation with one user turn and the numeric answer, judged by the
`math_answer` reward (the last number of the response, or a \\boxed{} / #### answer):

    {"messages": [{"role": "user", "content": "Tom has 17 apples. He buys 25 more. How many
      apples does Tom have now?"}], "answer": "42"}

Problems combine two or three steps of + - * with small whole numbers (--max-value); train and
eval are disjoint. Deterministic for a seed.
Usage: make_arithmetic_data.py OUT_DIR [--train 4000 --eval 400 --steps 1,2 --max-value 50 --seed 0]
                              [--system TEXT] [--ops "++--*"] [--worked-example]
--system puts a system turn before each question; --ops draws each operation from these characters
(repeats weight them); --worked-example puts one solved problem (a user turn and the assistant's
step-by-step answer, one sentence per step) before each question.
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


# Solved problems, one per number of operations (2 or 3): the user turn and the assistant's answer,
# one sentence per step. --worked-example shows the one with the task's largest --steps.
WORKED_EXAMPLES = {
    2: [{"role": "user", "content": "Ken has 4 stamps. Ken buys 3 more stamps. Ken gives away 2 stamps. "
                                    "How many stamps does Ken have now?"},
        {"role": "assistant", "content": "Ken starts with 4 stamps. He buys 3 more, so he has 4 + 3 = 7 stamps. "
                                         "He gives away 2, so he has 7 - 2 = 5 stamps. The answer is 5."}],
    3: [{"role": "user", "content": "Ken has 4 stamps. Ken buys 3 more stamps. Ken gives away 2 stamps. "
                                    "Ken finds 1 more stamp. How many stamps does Ken have now?"},
        {"role": "assistant", "content": "Ken starts with 4 stamps. He buys 3 more, so he has 4 + 3 = 7 stamps. "
                                         "He gives away 2, so he has 7 - 2 = 5 stamps. He finds 1 more, so he has "
                                         "5 + 1 = 6 stamps. The answer is 6."}],
}


def make_problem(rng, steps, max_value, system=None, ops="++--*", worked_example=False):
    while True:
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        value = rng.randint(2, max_value)
        sentences = [f"{name} has {value} {item}."]
        for _ in range(rng.choice(steps)):
            op = rng.choice(ops)
            x = rng.randint(2, 5) if op == "*" else rng.randint(1, max_value)
            text, new_value = step_text(rng, name, item, value, op, x)
            if new_value < 0 or new_value > 1000:
                break
            sentences.append(text)
            value = new_value
        else:
            question = " ".join(sentences) + f" How many {item} does {name} have now?"
            messages = [{"role": "system", "content": system}] if system else []
            if worked_example:
                messages += [dict(m) for m in WORKED_EXAMPLES[min(3, max(2, max(steps)))]]
            messages.append({"role": "user", "content": question})
            return {"messages": messages, "answer": str(value)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--eval", type=int, default=400)
    ap.add_argument("--steps", default="1,2", help="comma-separated numbers of operations per problem")
    ap.add_argument("--max-value", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--system", default=None, help="system turn before each question (e.g. a worked format)")
    ap.add_argument("--ops", default="++--*", help="operations to draw from (+ - *); repeats weight them")
    ap.add_argument("--worked-example", action="store_true", help="one solved problem before each question")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    steps = [int(s) for s in args.steps.split(",")]
    seen, rows = set(), []
    while len(rows) < args.train + args.eval:
        row = make_problem(rng, steps, args.max_value, args.system, args.ops, args.worked_example)
        key = row["messages"][-1]["content"]
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
