"""Hand-computed cases for scripts/experiments/credit_coupling.py: top-share selection, the coupling test
with its lag window, the lag profile and the cluster standard error."""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "experiments"))
import credit_coupling as cc  # noqa: E402


def tok(delta, fai, preplan=False, anchor=False):
    return {"delta": delta, "fai": fai, "preplan": preplan, "anchor": anchor}


def main():
    # top_share: ceil(q * n), ties broken toward the earlier index.
    assert cc.top_share([1, 5, 5, 2], 0.5) == {1, 2}
    assert cc.top_share([3, 3, 3], 0.1) == {0}
    # coupled: a preplan peak 0..k tokens before (or at) the anchor.
    assert cc.coupled(5, {2}, range(0, 4))
    assert not cc.coupled(5, {1}, range(0, 4))
    assert not cc.coupled(5, {6}, range(0, 4))
    assert cc.coupled(5, {5}, range(0, 4))
    # One response of 10 tokens, q = 0.2: preplan = top 2 of Δ over tokens 0..8 = {1, 6};
    # anchors = top 2 of FAI among tokens with FAI > 0 (0..7) = {3, 7}. Anchor 3 has preplan 1 at
    # lag 2 (coupled), anchor 7 has preplan 6 at lag 1 (coupled): share 2 / 2. Lag profile: also
    # preplan 6 three tokens after anchor 3 (lag -3).
    deltas = [0.1, 0.9, 0.2, 0.1, 0.1, 0.1, 0.8, 0.1, 0.3, 0.0]
    fais = [0.1, 0.1, 0.2, 0.9, 0.1, 0.3, 0.1, 0.7, 0.0, 0.0]
    tokens = [tok(d, f) for d, f in zip(deltas, fais)]
    anchors, hits, rand, profile = cc.response_stats(tokens, 0.2, 3, random.Random(0))
    assert (anchors, hits) == (2, 2), (anchors, hits)
    assert profile == {-3: 1, -2: 0, -1: 0, 0: 0, 1: 1, 2: 1, 3: 0}, profile
    # Random positions among the 8 FAI-defined tokens: each is coupled iff one of 1 or 6 is at
    # lag 0..3, i.e. positions {1, 2, 3, 4, 6, 7}: 6 of 8, so the expected count for 2 draws is 1.5.
    rng = random.Random(1)
    mean = sum(cc.response_stats(tokens, 0.2, 3, rng)[2] for _ in range(400)) / 400
    assert abs(mean - 1.5) < 0.05, mean
    # With window 0 neither anchor is coupled.
    assert cc.response_stats(tokens, 0.2, 0, random.Random(0))[1] == 0
    # Too few FAI-defined tokens: skipped.
    assert cc.response_stats([tok(0.1, 0.5)] * 3, 0.2, 3, random.Random(0)) is None
    # Trainer flags: preplan {0}, anchors {2, 9}: 2 is coupled (lag 2), 9 is not.
    flags = [tok(0, 0, preplan=(i == 0), anchor=(i in (2, 9))) for i in range(10)]
    assert cc.trainer_flags(flags, 3, random.Random(0))[:2] == (2, 1)
    # Cluster SE of sum(num)/sum(den): clusters (1, 2) and (3, 2): r = 1, residuals (-1, 1) / 2
    # -> sqrt((0.25 + 0.25) / (2 * 1)) = 0.5.
    assert abs(cc.cluster_se([1, 3], [2, 2]) - 0.5) < 1e-12
    print("credit coupling: all cases pass")


if __name__ == "__main__":
    main()
