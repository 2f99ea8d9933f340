#!/usr/bin/env python3
"""Summarizes a scripts/soak.sh run folder: one row per minute (tokens/s, latency and
TTFT percentiles, errors), the server's resident memory (RSS) growth from the end of
its second sixth (after warm-up) to its last sixth (means: it swings with the load), 5xx answers, wrong answers from the mix;
writes soak.json and soak.md, and soak.png (RSS and latency percentiles per minute)
where matplotlib imports. Exit 1 when RSS grew more than --rss-growth percent, any
5xx was answered, or the mix found anything.

  summary.py OUT [--rss-growth PCT] [--mix-exit RC] [--title T] [--server NAME]"""
import argparse, json, sys
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--rss-growth", type=float, default=5.0)
ap.add_argument("--mix-exit", type=int, default=0)
ap.add_argument("--title", default="c3-serve soak: concurrency 16 + mix")
ap.add_argument("--server", default="c3-serve", help="what the RSS was sampled of (plot label)")
a = ap.parse_args()
out = Path(a.out)
minutes = []
for f in sorted(out.glob("minute-*.json")):
    r = json.loads(f.read_text())
    lv = r["levels"][0]
    ms = lambda d, k: (d[k] or 0) * 1e3 if d.get(k) is not None else None
    fivexx = sum(v["count"] if isinstance(v, dict) else v
                 for k, v in lv["errors_by_kind"].items()
                 if k.split("_")[-1].startswith("5"))
    minutes.append({
        "minute": len(minutes) + 1, "requests": lv["requests"], "errors": lv["errors"], "5xx": fivexx,
        "tokens_per_second": lv["tokens_per_second"],
        "latency_p50_ms": ms(lv["latency_seconds"], "p50"), "latency_p95_ms": ms(lv["latency_seconds"], "p95"),
        "ttft_p50_ms": ms(lv["ttft_seconds"], "p50"), "ttft_p95_ms": ms(lv["ttft_seconds"], "p95"),
        "piece_text_mismatches": lv["piece_text_mismatches"],
    })
rss = [tuple(map(float, l.split("\t"))) for l in (out / "rss.tsv").read_text().split("\n") if l.strip()]
mix = json.loads((out / "mix.json").read_text()) if (out / "mix.json").exists() else {}


def rss_at(t):
    """The last sample at or before second t (KiB)."""
    best = None
    for s, v in rss:
        if s <= t:
            best = v
    return best


end = rss[-1][0] if rss else 0


def mean_rss(a, b):
    v = [r for s, r in rss if a <= s < b]
    return sum(v) / len(v) if v else 0.0


# RSS swings by tens of MiB with the load (KV caches, allocator arenas), so growth
# compares means, not two samples: the second sixth of the run (after warm-up)
# against the last sixth.
warm = mean_rss(end / 6, 2 * end / 6)
last = mean_rss(5 * end / 6, end + 1)
growth = 100.0 * (last - warm) / warm if warm else 0.0
for m in minutes:
    m["rss_mib"] = (rss_at(60.0 * m["minute"]) or last) / 1024
five = sum(m["5xx"] for m in minutes) + mix.get("server_error", 0)
wrong = mix.get("wrong_answer", 0) + sum(m["piece_text_mismatches"] for m in minutes)
summary = {
    "minutes": minutes, "rss_mean_second_sixth_mib": warm / 1024, "rss_mean_last_sixth_mib": last / 1024,
    "rss_max_mib": max((v for _, v in rss), default=0) / 1024,
    "rss_growth_percent": growth, "rss_growth_limit_percent": a.rss_growth,
    "server_errors_5xx": five, "wrong_answers": wrong, "mix": mix,
    "requests": sum(m["requests"] for m in minutes) + sum(
        mix.get(k, 0) for k in ("roundtrip", "compress_decompress", "cancelled_stream", "hostile")),
}
(out / "soak.json").write_text(json.dumps(summary, indent=1))
rows = ["| minute | requests | errors | tokens/s | latency p50 / p95 ms | TTFT p50 / p95 ms | RSS MiB |",
        "|---|---|---|---|---|---|---|"]
f = lambda v: "-" if v is None else f"{v:,.0f}"
for m in minutes:
    rows.append(f"| {m['minute']} | {m['requests']} | {m['errors']} | {m['tokens_per_second']:,.0f} | "
                f"{f(m['latency_p50_ms'])} / {f(m['latency_p95_ms'])} | {f(m['ttft_p50_ms'])} / {f(m['ttft_p95_ms'])} | "
                f"{m['rss_mib']:,.1f} |")
text = "\n".join(rows) + (
    f"\n\nRSS (mean) {warm / 1024:,.1f} MiB over the run's second sixth, {last / 1024:,.1f} MiB over its last sixth: "
    f"{growth:+.2f}% (limit {a.rss_growth}%). 5xx: {five}. Wrong answers: {wrong}. "
    f"Mix: {mix.get('roundtrip', 0)} whole round trips, {mix.get('compress_decompress', 0)} compress+decompress, "
    f"{mix.get('cancelled_stream', 0)} cancelled streams, {mix.get('hostile', 0)} hostile bodies (all 4xx: "
    f"{mix.get('unexpected_status', 0) == 0 and mix.get('server_error', 0) == 0})"
    + (f"; {mix['queue_full']} answered 'queue full' (back-pressure)" if "queue_full" in mix else "")
    + ".\n")
(out / "soak.md").write_text(text)
print(text)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot([s / 60 for s, _ in rss], [v / 1024 for _, v in rss])
    ax1.set_ylabel(f"{a.server} RSS (MiB)")
    xs = [m["minute"] for m in minutes]
    for key, label in [("latency_p50_ms", "latency p50"), ("latency_p95_ms", "latency p95"),
                       ("ttft_p50_ms", "TTFT p50"), ("ttft_p95_ms", "TTFT p95")]:
        ax2.plot(xs, [m[key] or 0 for m in minutes], marker="o", label=label)
    ax2.set_ylabel("ms (per minute)")
    ax2.set_xlabel("minute")
    ax2.legend()
    fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=100)
except ImportError:
    print("(no matplotlib here: soak.png not drawn)", file=sys.stderr)
bad = growth > a.rss_growth or five > 0 or wrong > 0 or a.mix_exit != 0
sys.exit(1 if bad else 0)
