#!/usr/bin/env python3
"""Self time per operator of a chrome trace written by LibTorch's legacy profiler
(`anchor-rl generate --profile FILE`, `anchor-bench-shared-prompts --profile DIR`). Nested
events are subtracted from their parent, so the rows add up to the traced wall time of the
thread. --parts also groups the self times into the parts of a decode step: weight GEMMs,
attention, elementwise + norms, sampling (everything under the `decode::sample` scope), and
framework overhead (views, allocation, the scopes' own time between ops).
    summarize_trace.py TRACE [TRACE...] [--top 15] [--parts]"""
import argparse
import collections
import json


GEMM = {"mkldnn::_linear_pointwise", "aten::mm", "aten::addmm", "aten::linear", "aten::_mkl_linear",
        "mkldnn::_reorder_linear_weight"}
ATTENTION = {"aten::bmm", "aten::baddbmm", "aten::_softmax", "aten::softmax", "aten::masked_fill",
             "aten::masked_fill_", "aten::_scaled_dot_product_flash_attention_for_cpu"}
OVERHEAD = {"aten::view", "aten::reshape", "aten::slice", "aten::as_strided", "aten::empty", "aten::empty_strided",
            "aten::narrow", "aten::select", "aten::transpose", "aten::unsqueeze", "aten::squeeze", "aten::expand",
            "aten::t", "aten::detach", "aten::alias", "aten::_unsafe_view", "aten::contiguous", "aten::resize_",
            "aten::to", "aten::_to_copy", "aten::item", "aten::_local_scalar_dense", "aten::matmul"}


def part_of(name, in_sample):
    if in_sample:
        return "sampling"
    if name in GEMM:
        return "weight GEMMs"
    if name in ATTENTION:
        return "attention (scores, softmax, values)"
    if name in OVERHEAD or not name.startswith(("aten::", "mkldnn::")):
        return "overhead (views, allocation, glue)"
    return "elementwise + norms"


def self_times(path):
    events = [e for e in json.load(open(path)) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    totals, parts, wall = collections.Counter(), collections.Counter(), 0.0
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, name, start, end, child_time, inside decode::sample]
        def close(item):
            t = max(0.0, (item[3] - item[2]) - item[4])
            totals[item[1]] += t
            parts[part_of(item[1], item[5])] += t
        for e in evs:
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1][0] <= start:
                close(stack.pop())
            if stack:
                stack[-1][4] += e["dur"]
            else:
                wall += e["dur"]
            # The innermost decode scope decides (decode::sample spans its loop iteration,
            # which ends with the next step's decode::forward).
            in_sample = e["name"] == "decode::sample" or (e["name"] != "decode::forward" and bool(stack and stack[-1][5]))
            stack.append([end, e["name"], start, end, 0.0, in_sample])
        while stack:
            close(stack.pop())
    return totals, parts, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--parts", action="store_true", help="also group the self times into parts")
    a = ap.parse_args()
    for path in a.traces:
        totals, parts, wall = self_times(path)
        print(f"{path}: {wall / 1e6:.2f} s traced")
        for name, us in totals.most_common(a.top):
            print(f"  {name:45s} {us / 1e6:8.3f} s  {100 * us / wall:5.1f}%")
        if a.parts:
            for name, us in parts.most_common():
                print(f"  [part] {name:38s} {us / 1e6:8.3f} s  {100 * us / wall:5.1f}%")


if __name__ == "__main__":
    main()
