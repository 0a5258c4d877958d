#!/usr/bin/env python3
"""Evidence for the two SFT modes (issue 8), on data this script generates.

  scripts/experiments/sft_evidence.py conditional [--seeds 0 1 2] [--steps 300]
  scripts/experiments/sft_evidence.py indicator   [--seeds 0 1 2] [--steps 300] [--beta B] [--open-share P] [--irrelevant-share Q]
  scripts/experiments/sft_evidence.py indicator-scores [--model DIR]   (default: SmolLM2-135M-Instruct)

conditional: a corpus of arithmetic statements ("7 + 5 = 12.") of which a known share (25%) is
  wrong. Plain SFT and conditional SFT (sft.mode conditional, scorer arithmetic_claims) train on
  the same rows from data/demo-model; held-out prompts are sampled (temperature 1) from the plain
  model, and from the conditional model after <|good|>, after <|bad|> and with no control token.
  Reported: the share of generated arithmetic claims that are false.

indicator: a context-QA task whose passages can contradict what the model was trained on: the
  model knows sums (closed-book rows "Target: 3 + 4." -> "3 + 4 = 7. Answer: 7"); open-book rows
  give a passage "Numbers: 3 + 4 = 9." and the answer must come from it. In training 30% of the
  passages disagree with arithmetic; the test passages all do. With --irrelevant-share, some rows
  carry a passage about other numbers and the answer is computed, so the model must tell whether
  the passage answers the question. Plain SFT vs SFT with the
  context-dependency indicator (sft.mode context_indicator; seed model data/demo-model), queried
  without and with " [IND]". Reported: context recall (answer = the passage's value) and
  parametric answers (answer = the true sum), greedy decoding.

indicator-scores: what the score measures on a released chat model: 100 questions answered from a
  passage in the user message vs 100 closed-book questions, scored with the model's own template.

Every run is `anchor-rl sft` / `anchor-rl generate` ($ANCHOR_RL or build/anchor-rl); results go to
runs/sft-evidence-<experiment>/results.json and a Markdown table on stdout.
"""
import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("ANCHOR_RL", os.path.join(ROOT, "build", "anchor-rl"))
CLAIM = re.compile(r"(?<![\w.])(\d+) ([-+*]) (\d+) = (-?\d+)")


def run(args, capture=False):
    out = subprocess.run([BINARY] + args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise SystemExit(f"anchor-rl {' '.join(args)} exited with {out.returncode}")
    return out.stdout


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def apply(a, op, b):
    return a + b if op == "+" else a - b if op == "-" else a * b


def mean_se(values):
    m = statistics.mean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return m, se


def train(run_dir, data, mode, seed, steps, extra=()):
    shutil.rmtree(run_dir, ignore_errors=True)
    run(["sft", "configs/demo_sft.yaml", "--run-dir", run_dir, "--set", "model.path=data/demo-model",
         "--set", f"data.train={data}", "--set", "data.eval=", "--set", f"sft.mode={mode}",
         "--set", f"train.steps={steps}", "--set", f"train.seed={seed}", "--set", "optim.lr=1e-3",
         "--set", "optim.warmup_steps=20", "--set", "checkpoint.every=0", "--set", "checkpoint.keep_last=1",
         "--set", "logging.progress=false"] + list(extra))
    with open(os.path.join(run_dir, "checkpoints", "latest")) as f:
        return os.path.join(run_dir, "checkpoints", f.read().strip())


def generate(model, prompt_file, seed, samples, temperature, control=None, indicator=False):
    args = ["generate", "--model", model, "--prompt-file", prompt_file, "--num-samples", str(samples),
            "--temperature", str(temperature), "--max-new-tokens", "48", "--stop", "\n", "--output", "jsonl",
            "--seed", str(seed), "--batch-size", "128"]
    if control:
        args += ["--control", control]
    if indicator:
        args += ["--indicator"]
    return [json.loads(line) for line in run(args).splitlines() if line.startswith("{")]


# --- conditional training

def arithmetic_rows(rng, n, bad_share):
    rows = []
    for _ in range(n):
        numbers, sentences = [], []
        for _ in range(3):
            op = rng.choice("+-*")
            a, b = (rng.randint(1, 12), rng.randint(1, 12)) if op == "*" else (rng.randint(1, 30), rng.randint(1, 30))
            value = apply(a, op, b)
            if rng.random() < bad_share:
                value += rng.choice([-10, -2, -1, 1, 2, 10])
            numbers += [a, b]
            sentences.append(f"{a} {op} {b} = {value}.")
        rows.append({"prompt": "Numbers: " + " ".join(map(str, numbers)) + ".\n", "response": " ".join(sentences) + "\n"})
    return rows


def claim_rates(generations):
    claims = false = 0
    for g in generations:
        for a, op, b, c in CLAIM.findall(g["completion"]):
            claims += 1
            false += apply(int(a), op, int(b)) != int(c)
    return claims, false


def conditional(args):
    out_dir = os.path.join(ROOT, "runs", "sft-evidence-conditional")
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for seed in args.seeds:
        rng = random.Random(1000 + seed)
        data = os.path.join(out_dir, f"train-seed{seed}.jsonl")
        write_jsonl(data, arithmetic_rows(rng, 3000, 0.25))
        prompts = os.path.join(out_dir, f"heldout-seed{seed}.txt")
        with open(prompts, "w") as f:
            for r in arithmetic_rows(random.Random(2000 + seed), 200, 0.0):
                f.write(json.dumps(r["prompt"]) + "\n")
        plain = train(os.path.join(out_dir, f"plain-seed{seed}"), data, "plain", seed, args.steps)
        cond = train(os.path.join(out_dir, f"conditional-seed{seed}"), data, "conditional", seed, args.steps)
        row = {"seed": seed}
        for name, model, control in (("plain SFT", plain, None), ("conditional, <|good|>", cond, "good"),
                                     ("conditional, no token", cond, None), ("conditional, <|bad|>", cond, "bad")):
            gens = generate(model, prompts, seed, 4, 1.0, control)
            claims, false = claim_rates(gens)
            row[name] = {"claims": claims, "false": false, "false_share": false / max(claims, 1)}
        results.append(row)
        print(json.dumps(row), flush=True)
    names = ["plain SFT", "conditional, <|good|>", "conditional, no token", "conditional, <|bad|>"]
    print("\nShare of generated arithmetic claims that are false (training data: 25%); "
          f"{len(args.seeds)} seeds, 200 held-out prompts x 4 samples, temperature 1\n")
    print("| model, generation | " + " | ".join(f"seed {r['seed']}" for r in results) + " | mean ± SE |")
    print("|---|" + "---|" * (len(results) + 1))
    summary = {}
    for n in names:
        vals = [r[n]["false_share"] for r in results]
        m, se = mean_se(vals)
        summary[n] = {"mean": m, "se": se}
        print(f"| {n} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {m:.3f} ± {se:.3f} |")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"runs": results, "summary": summary, "steps": args.steps}, f, indent=2)


# --- context-dependency indicator

def qa_rows(rng, n, open_share, conflict_share, irrelevant_share=0.0):
    """Closed-book rows (compute the sum), open-book rows (copy the passage's value, which
    contradicts arithmetic with probability conflict_share) and, with irrelevant_share, open-book
    rows whose passage is about other numbers (compute the sum, ignore the passage)."""
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 30), rng.randint(1, 30)
        u = rng.random()
        if u < open_share:
            z = a + b
            if rng.random() < conflict_share:
                z += rng.choice([-10, -3, -2, -1, 1, 2, 3, 10])
            rows.append({"prompt": f"Numbers: {a} + {b} = {z}. Target: {a} + {b}.\n", "response": f"Answer: {z}\n",
                         "kind": "open", "passage": z, "truth": a + b})
        elif u < open_share + irrelevant_share:
            x, y = a, b
            while (x, y) == (a, b):
                x, y = rng.randint(1, 30), rng.randint(1, 30)
            w = x + y + (rng.choice([-10, -2, -1, 1, 2, 10]) if rng.random() < conflict_share else 0)
            rows.append({"prompt": f"Numbers: {x} + {y} = {w}. Target: {a} + {b}.\n",
                         "response": f"{a} + {b} = {a + b}. Answer: {a + b}\n", "kind": "irrelevant"})
        else:
            rows.append({"prompt": f"Target: {a} + {b}.\n", "response": f"{a} + {b} = {a + b}. Answer: {a + b}\n",
                         "kind": "closed"})
    return rows


def answers(generations, tests):
    recall = parametric = 0
    for g in generations:
        t = tests[g["prompt_index"]]
        m = re.search(r"Answer: (-?\d+)", g["completion"])
        value = int(m.group(1)) if m else None
        recall += value == t["passage"]
        parametric += value == t["truth"]
    n = max(len(generations), 1)
    return recall / n, parametric / n


def indicator(args):
    out_dir = os.path.join(ROOT, "runs", "sft-evidence-indicator" + ("-irrelevant" if args.irrelevant_share > 0 else ""))
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for seed in args.seeds:
        rng = random.Random(3000 + seed)
        data = os.path.join(out_dir, f"train-seed{seed}.jsonl")
        rows = qa_rows(rng, 3000, args.open_share, 0.3, args.irrelevant_share)
        write_jsonl(data, rows)
        tests = qa_rows(random.Random(4000 + seed), 400, 1.0, 1.0)[:200]
        prompts = os.path.join(out_dir, f"conflict-seed{seed}.txt")
        with open(prompts, "w") as f:
            for t in tests:
                f.write(json.dumps(t["prompt"]) + "\n")
        plain = train(os.path.join(out_dir, f"plain-seed{seed}"), data, "plain", seed, args.steps)
        ind_dir = os.path.join(out_dir, f"indicator-seed{seed}")
        ind = train(ind_dir, data, "context_indicator", seed, args.steps,
                    ["--set", f"sft.context_indicator.beta={args.beta}"])
        with open(os.path.join(ind_dir, "sft_data_summary.json")) as f:
            flagged = json.load(f)["context_indicator"]
        # Which kind of row the indicator flagged (open-book rows need the passage).
        kinds = {"open": [0, 0, 0.0], "closed": [0, 0, 0.0], "irrelevant": [0, 0, 0.0]}  # rows, flagged, score sum
        with open(os.path.join(ind_dir, "sft_data.jsonl")) as f:
            for r, line in zip(rows, f):
                turn = json.loads(line)["turns"][0]
                kinds[r["kind"]][0] += 1
                kinds[r["kind"]][1] += turn["flagged"]
                kinds[r["kind"]][2] += turn["score"]
        row = {"seed": seed, "share_flagged": flagged["share_flagged"],
               "flagged_open": kinds["open"][1] / max(kinds["open"][0], 1),
               "flagged_closed": kinds["closed"][1] / max(kinds["closed"][0], 1),
               "flagged_irrelevant": kinds["irrelevant"][1] / max(kinds["irrelevant"][0], 1),
               "score_irrelevant": kinds["irrelevant"][2] / max(kinds["irrelevant"][0], 1),
               "score_open": kinds["open"][2] / max(kinds["open"][0], 1),
               "score_closed": kinds["closed"][2] / max(kinds["closed"][0], 1)}
        for name, model, ind_flag in (("plain SFT", plain, False), ("indicator SFT, no [IND]", ind, False),
                                      ("indicator SFT, with [IND]", ind, True)):
            recall, parametric = answers(generate(model, prompts, seed, 1, 0.0, None, ind_flag), tests)
            row[name] = {"context_recall": recall, "parametric": parametric}
        results.append(row)
        print(json.dumps(row), flush=True)
    names = ["plain SFT", "indicator SFT, no [IND]", "indicator SFT, with [IND]"]
    print(f"\nContext recall on 200 conflicting passages (answer = the passage's value; parametric = the true "
          f"sum), greedy; {len(args.seeds)} seeds; beta {args.beta}\n")
    print("| model, query | context recall (mean ± SE) | parametric answers (mean ± SE) | per seed (recall) |")
    print("|---|---|---|---|")
    summary = {}
    for n in names:
        rec = [r[n]["context_recall"] for r in results]
        par = [r[n]["parametric"] for r in results]
        (mr, sr), (mp, sp) = mean_se(rec), mean_se(par)
        summary[n] = {"context_recall": [mr, sr], "parametric": [mp, sp]}
        print(f"| {n} | {mr:.3f} ± {sr:.3f} | {mp:.3f} ± {sp:.3f} | " + " / ".join(f"{v:.3f}" for v in rec) + " |")
    fl = [r["share_flagged"] for r in results]
    print(f"\nflagged by the indicator: {statistics.mean(fl):.3f} of training turns; open-book rows "
          f"{statistics.mean(r['flagged_open'] for r in results):.3f}, closed-book rows "
          f"{statistics.mean(r['flagged_closed'] for r in results):.3f}; mean score open-book "
          f"{statistics.mean(r['score_open'] for r in results):.3f}, closed-book "
          f"{statistics.mean(r['score_closed'] for r in results):.3f}")
    if args.irrelevant_share > 0:
        print(f"irrelevant-passage rows: flagged {statistics.mean(r['flagged_irrelevant'] for r in results):.3f}, "
              f"mean score {statistics.mean(r['score_irrelevant'] for r in results):.3f}")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"runs": results, "summary": summary, "steps": args.steps, "beta": args.beta,
                   "open_share": args.open_share, "irrelevant_share": args.irrelevant_share}, f, indent=2)


# --- what the score measures on a released chat model

def indicator_scores(args):
    """Context-dependency scores of SmolLM2-135M-Instruct (its chat template, the default layer and
    beta) on 100 questions answered from a passage in the user message and 100 closed-book ones."""
    out_dir = os.path.join(ROOT, "runs", "sft-evidence-indicator-scores")
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(0)
    names = ["Anna", "Ben", "Clara", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Leo",
             "Mona", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara"]
    cities = ["Lyon", "Porto", "Bergen", "Graz", "Turin", "Leeds", "Ghent", "Cork", "Split", "Malmo"]
    things = ["a red bicycle", "three cats", "a small boat", "an old piano", "a green car", "two dogs", "a violin"]
    capitals = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
                ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo")]
    rows = []
    for _ in range(100):
        n, c, t = rng.choice(names), rng.choice(cities), rng.choice(things)
        rows.append({"prompt": f"{n} lives in {c} and owns {t}. Where does {n} live?", "response": f"{n} lives in {c}.",
                     "kind": "passage"})
    for _ in range(100):
        co, ca = rng.choice(capitals)
        q = rng.choice([f"What is the capital of {co}?", f"Name the capital city of {co}.",
                        f"Which city is the capital of {co}?"])
        rows.append({"prompt": q, "response": f"The capital of {co} is {ca}.", "kind": "closed-book"})
    data, prepared = os.path.join(out_dir, "qa.jsonl"), os.path.join(out_dir, "prepared.jsonl")
    write_jsonl(data, rows)
    summary = json.loads(run(["sft-prepare", "configs/demo_sft.yaml", "--set", f"model.path={args.model}",
                              "--set", "data.template=auto", "--set", f"data.train={data}",
                              "--set", "sft.mode=context_indicator", "--out", prepared]))
    with open(prepared) as f:
        turns = [json.loads(line)["turns"][0] for line in f]
    print(f"{args.model}, layer {summary['context_indicator']['layer']}, beta {summary['context_indicator']['beta']}:")
    for kind in ("passage", "closed-book"):
        scores = [t["score"] for r, t in zip(rows, turns) if r["kind"] == kind]
        flagged = [t["flagged"] for r, t in zip(rows, turns) if r["kind"] == kind]
        print(f"  {kind}: score mean {statistics.mean(scores):.3f} (min {min(scores):.3f}, max {max(scores):.3f}), "
              f"flagged {sum(flagged) / len(flagged):.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=["conditional", "indicator", "indicator-scores"])
    p.add_argument("--model", default=os.path.expanduser("~/.cache/anchor-rl/models/smollm2-135m-instruct"),
                   help="indicator-scores: the chat model that scores")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--beta", type=float, default=0.6, help="indicator: sft.context_indicator.beta")
    p.add_argument("--open-share", type=float, default=0.4, help="indicator: share of rows whose passage answers")
    p.add_argument("--irrelevant-share", type=float, default=0.0,
                   help="indicator: share of rows whose passage is about other numbers (the answer is computed)")
    args = p.parse_args()
    {"conditional": conditional, "indicator": indicator, "indicator-scores": indicator_scores}[args.experiment](args)


if __name__ == "__main__":
    main()
