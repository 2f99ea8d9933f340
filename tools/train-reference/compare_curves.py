#!/usr/bin/env python3
"""Lays a `c3 train` run's curve beside the reference trainer's run of the same recipe
(issue 26: does our trainer reach what the reference reaches, step for step?).

    python3 tools/train-reference/compare_curves.py runs/c3-small-w128/metrics.jsonl \
        docs/training/h200-sweeps/v8-w128-n16-h256L4-b64.jsonl

Prints a Markdown table at every step either run logged (its `loss` is that one
step's batch; ours is the mean over the `log_every` steps ending there, so ours is
smoother, not lower or higher on average) and every held-out evaluation of either run.
Standard library only.
"""

import json
import sys


def read(path):
    loss, evals, lr = {}, {}, {}
    for line in open(path):
        d = json.loads(line)
        if "step" not in d:
            continue
        if "loss" in d:
            loss[d["step"]] = d["loss"]
            lr[d["step"]] = d.get("lr")
        if "eval_char_precision" in d:
            evals[d["step"]] = d["eval_char_precision"]
    return loss, evals, lr


def main():
    ours_path, ref_path = sys.argv[1], sys.argv[2]
    ol, oe, olr = read(ours_path)
    rl, re_, rlr = read(ref_path)
    last = max(list(ol) + list(oe) or [0])
    steps = sorted(s for s in set(rl) | set(re_) | set(oe) | set(ol) if s <= last)
    print(f"| step | lr (ours / reference) | loss, c3 train | loss, reference | held-out char precision, c3 train | reference |")
    print("|---|---|---|---|---|---|")
    for s in steps:
        f = lambda d, k, fmt: (fmt.format(d[k]) if k in d and d[k] is not None else "–")
        lr = f"{f(olr, s, '{:.2e}')} / {f(rlr, s, '{:.2e}')}"
        print(f"| {s} | {lr} | {f(ol, s, '{:.3f}')} | {f(rl, s, '{:.3f}')} | "
              f"{f(oe, s, '{:.1%}')} | {f(re_, s, '{:.1%}')} |")
    print(f"\nours: {ours_path} (last step {last}); reference: {ref_path}")


if __name__ == "__main__":
    main()
