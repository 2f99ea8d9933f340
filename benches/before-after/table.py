#!/usr/bin/env python3
"""The comparison benches/before-after/run.sh measured, as Markdown rows:
`c3 bench`'s figures and the serve levels, old beside new, new/old.
Usage: benches/before-after/table.py OUT"""
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
load = lambda n: json.loads((out / n).read_text())
rows = []


def row(what, old, new, better="higher"):
    if old is None or new is None:
        return
    r = new / old if old else float("nan")
    rows.append(f"| {what} | {old:,.2f} | {new:,.2f} | {r:.3f}x ({better} is better) |")


bo, bn = load("bench-old.json")["runtime"], load("bench-new.json")["runtime"]
for key, better in [("docs_per_second", "higher"), ("time_to_first_token_ms", "lower"),
                    ("decode_tokens_per_second_b1", "higher"), ("decode_tokens_per_second_b8", "higher")]:
    row(f"c3 bench: {key}", bo.get(key), bn.get(key), better)
so, sn = load("serve-old.json"), load("serve-new.json")
for lo, ln in zip(so["levels"], sn["levels"]):
    c = lo["concurrency"]
    row(f"serve c{c}: tokens/s", lo["tokens_per_second"], ln["tokens_per_second"])
    p = lambda l: (l["ttft_seconds"]["p50"] or 0) * 1e3
    row(f"serve c{c}: TTFT p50 ms", p(lo), p(ln), "lower")
    e = lo["errors"] + ln["errors"]
    if e:
        rows.append(f"| serve c{c}: errors | {lo['errors']} | {ln['errors']} | |")
print("| figure | before | after | after/before |")
print("|---|---|---|---|")
print("\n".join(rows))
