"""Dependencies point one way (docs/design.md §1): a source file includes project headers from
its own folder or from lower layers only, and the two trainers (trainer/rl, trainer/sft) are
siblings that include neither each other.

Usage: check_include_layers.py REPO_ROOT
"""
import os
import re
import sys

# Lower numbers are lower layers; folders on the same layer may include each other only when
# they are the same folder or listed as partners below.
LAYERS = {
    "trainer/common": 0,
    "data": 1, "rewards": 1, "trainer/distributed": 1,
    "trainer/model": 2,
    "credit": 3, "trainer/algo": 3,
    "trainer/rollout": 4,
    "trainer/config": 5,
    "trainer/optim": 6, "trainer/checkpoint": 6,
    "trainer/run": 7,
    "trainer/rl": 8, "trainer/sft": 8,
    "trainer/analysis": 9, "trainer/ablation": 9,
    "trainer/cli": 10,
}
PARTNERS = {("trainer/checkpoint", "trainer/optim")}  # a training checkpoint holds the optimizer state
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path):
    for f in sorted(LAYERS, key=len, reverse=True):
        if path == f or path.startswith(f + "/"):
            return f
    return None


def main():
    root = sys.argv[1]
    problems, edges = [], 0
    for top in ("trainer", "credit", "rewards", "data"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in names:
                if not name.endswith((".h", ".cpp")):
                    continue
                src = os.path.relpath(os.path.join(dirpath, name), root)
                a = folder_of(src)
                if a is None:
                    problems.append(f"{src}: folder has no layer in check_include_layers.py")
                    continue
                for line in open(os.path.join(root, src), encoding="utf-8"):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    b = folder_of(m.group(1))
                    if b is None or a == b:
                        continue
                    edges += 1
                    if (a, b) in PARTNERS or (b, a) in PARTNERS:
                        continue
                    if LAYERS[b] >= LAYERS[a]:
                        problems.append(f"{src} includes {m.group(1)}: {b} (layer {LAYERS[b]}) is not below "
                                        f"{a} (layer {LAYERS[a]})")
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print(f"{edges} includes across folders, all downward; trainer/rl and trainer/sft include neither each other")
    return 0


if __name__ == "__main__":
    sys.exit(main())
