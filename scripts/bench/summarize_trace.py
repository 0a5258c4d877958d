#!/usr/bin/env python3
"""Self time per operator of a chrome trace written by LibTorch's legacy profiler
(anchor-bench-shared-prompts --profile DIR). Nested events are subtracted from their parent,
so the rows add up to the traced wall time of the thread.
    summarize_trace.py TRACE [TRACE...] [--top 15]"""
import argparse
import collections
import json


def self_times(path):
    events = [e for e in json.load(open(path)) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    totals, wall = collections.Counter(), 0.0
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, name, child_time]
        def close(item):
            totals[item[1]] += max(0.0, (item[3] - item[2]) - item[4])
        for e in evs:
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1][0] <= start:
                close(stack.pop())
            if stack:
                stack[-1][4] += e["dur"]
            else:
                wall += e["dur"]
            stack.append([end, e["name"], start, end, 0.0])
        while stack:
            close(stack.pop())
    return totals, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    for path in a.traces:
        totals, wall = self_times(path)
        print(f"{path}: {wall / 1e6:.2f} s traced")
        for name, us in totals.most_common(a.top):
            print(f"  {name:45s} {us / 1e6:8.3f} s  {100 * us / wall:5.1f}%")


if __name__ == "__main__":
    main()
