"""WAAD -> FAI coupling of a model's own responses: do FAI peaks (anchor tokens) follow WAAD
peaks (preplan tokens) within a few tokens more often than random positions do?

For each of N prompts of a JSONL dataset the model samples a response and `anchor-rl credit`
measures it (one streaming attention pass, the run config's credit: section). Per response:

    preplan peaks  P = the top q of tokens by the preplan signal Δ_t = |WAAD_t - WAAD_{t+1}|
    anchor peaks   A = the top q of tokens by FAI (tokens with FAI rows only)
    coupled(t)     = some p in P with t - k <= p <= t         (a WAAD peak 0..k tokens before)
    share          = mean over anchors t in A of coupled(t)
    random share   = the same test at |A| positions drawn uniformly (20 draws averaged)

and the lag profile: for lag L in -3..+3, the share of anchors with a preplan peak at t - L.
Shares are pooled over anchors; standard errors treat responses as independent clusters. Both
q (--fraction) and the trainer's own flags (credit.token_fraction of the config, default 0.1; 0.4 before the sink-aware defaults)
are reported, since how many tokens are flagged sets the random baseline.

Usage:
  credit_coupling.py --model DIR --data FILE.jsonl [--n 100] [--fraction 0.1] [--window 3]
                     [--template auto] [--max-new-tokens 160] [--temperature 0.7]
                     [--config configs/...yaml] [--set credit.key=value ...] [--binary build/anchor-rl]
                     [--work DIR] [--threads 2]
Prints the command line and a JSON summary; per-response credit.json files stay under --work.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import time


def top_share(values, q):
    """Indices of the top ceil(q * n) values (ties: earlier first), as in credit::top_share."""
    n = len(values)
    k = min(n, math.ceil(q * n))
    order = sorted(range(n), key=lambda i: (-values[i], i))
    return set(order[:k])


def coupled(anchor, preplan, lags):
    return any((anchor - lag) in preplan for lag in lags)


def response_stats(tokens, q, window, rng, draws=20):
    """(anchors, coupled anchors, random coupled (mean over draws), lag counts) of one response."""
    fai_defined = [i for i, t in enumerate(tokens) if t["fai"] > 0]
    if len(fai_defined) < 4:
        return None
    delta = [t["delta"] for t in tokens]
    preplan = top_share(delta[:-1], q)  # Δ of the last token is 0 by definition
    fai_values = [tokens[i]["fai"] for i in fai_defined]
    anchors = [fai_defined[i] for i in top_share(fai_values, q)]
    lags = range(0, window + 1)
    hits = sum(coupled(a, preplan, lags) for a in anchors)
    rand = 0.0
    for _ in range(draws):
        positions = rng.sample(fai_defined, len(anchors))
        rand += sum(coupled(p, preplan, lags) for p in positions)
    rand /= draws
    profile = {lag: sum((a - lag) in preplan for a in anchors) for lag in range(-3, 4)}
    return len(anchors), hits, rand, profile


def trainer_flags(tokens, window, rng, draws=20):
    """The same statistic on the trainer's own preplan / anchor flags (credit.token_fraction)."""
    preplan = {i for i, t in enumerate(tokens) if t["preplan"]}
    anchors = [i for i, t in enumerate(tokens) if t["anchor"]]
    lags = range(0, window + 1)
    rand = sum(sum(coupled(p, preplan, lags) for p in rng.sample(range(len(tokens)), len(anchors)))
               for _ in range(draws)) / draws
    return len(anchors), sum(coupled(a, preplan, lags) for a in anchors), rand


def cluster_se(num, den):
    """Standard error of a ratio of sums sum(num)/sum(den) over independent clusters."""
    n = len(num)
    if n < 2 or sum(den) == 0:
        return float("nan")
    r = sum(num) / sum(den)
    mean_den = sum(den) / n
    resid = [(a - r * b) / mean_den for a, b in zip(num, den)]
    return math.sqrt(sum(x * x for x in resid) / (n * (n - 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--window", type=int, default=3)
    ap.add_argument("--template", default="auto")
    ap.add_argument("--prompt-key", default="prompt")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--config")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--binary", default="build/anchor-rl")
    ap.add_argument("--work", default="runs/credit_coupling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("command:", " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]), flush=True)

    rows = sum(1 for line in open(args.data) if line.strip())
    n = min(args.n, rows)
    rng = random.Random(args.seed)
    per = {"anchors": [], "hits": [], "random": [], "flag_anchors": [], "flag_hits": [], "flag_random": []}
    profile = {lag: 0 for lag in range(-3, 4)}
    lengths = []
    t0 = time.time()
    for i in range(n):
        out = os.path.join(args.work, f"response-{i:04d}")
        if not os.path.exists(os.path.join(out, "credit.json")):
            cmd = [args.binary, "credit", "--model", args.model, "--data", args.data, "--index", str(i), "--generate",
                   "--template", args.template, "--prompt-key", args.prompt_key, "--max-new-tokens",
                   str(args.max_new_tokens), "--temperature", str(args.temperature), "--seed", str(args.seed + i),
                   "--threads", str(args.threads), "--out", out]
            if args.config:
                cmd += ["--config", args.config]
            for s in args.set:
                cmd += ["--set", s]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        tokens = json.load(open(os.path.join(out, "credit.json")))["tokens"]
        lengths.append(len(tokens))
        stats = response_stats(tokens, args.fraction, args.window, rng)
        if stats is None:
            continue
        a, h, r, prof = stats
        per["anchors"].append(a)
        per["hits"].append(h)
        per["random"].append(r)
        for lag, c in prof.items():
            profile[lag] += c
        fa, fh, fr = trainer_flags(tokens, args.window, rng)
        per["flag_anchors"].append(fa)
        per["flag_hits"].append(fh)
        per["flag_random"].append(fr)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{n} responses, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)

    anchors = sum(per["anchors"])
    share = sum(per["hits"]) / anchors
    random_share = sum(per["random"]) / anchors
    diff = [h - r for h, r in zip(per["hits"], per["random"])]
    summary = {
        "model": args.model, "data": args.data, "responses": len(per["anchors"]),
        "mean_response_tokens": sum(lengths) / len(lengths), "fraction": args.fraction, "window": args.window,
        "anchors": anchors,
        "coupled_share": share, "coupled_share_se": cluster_se(per["hits"], per["anchors"]),
        "random_share": random_share, "random_share_se": cluster_se(per["random"], per["anchors"]),
        "difference": share - random_share, "difference_se": cluster_se(diff, per["anchors"]),
        "lag_profile": {str(lag): profile[lag] / anchors for lag in range(-3, 4)},
        "trainer_flags": {
            "anchors": sum(per["flag_anchors"]),
            "coupled_share": sum(per["flag_hits"]) / max(1, sum(per["flag_anchors"])),
            "random_share": sum(per["flag_random"]) / max(1, sum(per["flag_anchors"])),
        },
        "seconds": time.time() - t0,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
