"""report.json, report.md and throughput_vs_compression.png from the measured rows.

The published precision beside every point comes from crates/c3-core/src/published.rs
(the paper's Fox tables: C3 N = 32/64/100 and DeepSeek-OCR v1 at 64/100 vision tokens),
parsed from that file so the numbers live in one place.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_RS = ROOT / "crates" / "c3-core" / "src" / "published.rs"
FIELDS = ["c3_n64", "ds_ocr_64", "ratio_64", "c3_n100", "ds_ocr_100", "ratio_100", "c3_n32", "ratio_32"]


def published_fox(path=PUBLISHED_RS):
    """The FOX rows of published.rs: [{lo, hi, c3_n64, ds_ocr_64, ...}], in file order."""
    src = Path(path).read_text()
    body = src[src.index("pub const FOX"):]
    body = body[:body.index("];")]
    rows = []
    for lo, vals in re.findall(r"row\(\s*(\d+)\s*,\s*\[([^\]]*)\]\s*\)", body):
        v = [float(x) for x in vals.split(",") if x.strip()]
        if len(v) != len(FIELDS):
            raise ValueError(f"published.rs row {lo}: {len(v)} values, expected {len(FIELDS)}")
        rows.append({"lo": int(lo), "hi": int(lo) + 100, **dict(zip(FIELDS, v))})
    if not rows:
        raise ValueError(f"no FOX rows parsed from {path}")
    return rows


def published_precision(system, n_tokens, text_tokens, fox=None):
    """(precision, label) the paper publishes for `system` reading `n_tokens` per page at a
    page of `text_tokens` Qwen tokens, or (None, why not)."""
    fox = fox or published_fox()
    row = next((r for r in fox if r["lo"] <= text_tokens < r["hi"]), None)
    if row is None:
        return None, "outside the Fox 600-1300 buckets"
    b = f"Fox {row['lo']}-{row['hi']}"
    if system == "c3" and n_tokens in (32, 64, 100):
        return row[f"c3_n{n_tokens}"], f"C3 N={n_tokens}, {b} (published)"
    if system == "deepseek-ocr-v1" and n_tokens in (64, 100):
        return row[f"ds_ocr_{n_tokens}"], f"DeepSeek-OCR {n_tokens} tokens, {b} (published)"
    if system == "deepseek-ocr-2":
        return None, "no published Fox figure for DeepSeek-OCR-2 at this token count"
    return None, f"no published figure at N={n_tokens}"


COLUMNS = [
    ("system", "system"), ("config", "configuration / mode"), ("weights", "weights"),
    ("text_tokens", "text tokens / page (Qwen)"), ("decoder_tokens", "tokens the decoder reads"),
    ("compression", "compression (text / decoder tokens)"), ("preprocess_s", "preprocess s (render or tokenize)"),
    ("encoder_s", "encoder s"), ("prefill_s", "decoder prefill s"), ("ttft_s", "time to first token s"),
    ("decode_tps_b1", "decode tok/s b1"), ("decode_tps_b8", "decode tok/s b8"), ("peak_mib", "peak memory MiB"),
    ("pages_per_s", "pages/s (whole page)"), ("char_precision", "char precision, measured"),
    ("published", "published precision"),
]


def fmt(v, key):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if key == "compression":
            return f"{v:.1f}x"
        if key in ("char_precision",):
            return f"{100 * v:.1f}%"
        if key == "pages_per_s":
            return f"{v:.3g}"
        if key == "peak_mib":
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def row_cells(r):
    cells = []
    for key, _ in COLUMNS:
        if key == "config" and r.get("busy"):
            cells.append(f"{r['config']} ‡")
            continue
        if key == "published":
            p = r.get("published_precision")
            cells.append(f"{100 * p:.1f}% ({r['published_label']})" if p is not None else "–")
        elif key == "pages_per_s":
            s = fmt(r.get(key), key)
            cells.append(s + (" (extrapolated)" if r.get("pages_per_s_extrapolated") and r.get(key) else ""))
        elif key == "decode_tps_b8":
            cells.append(fmt(r.get(key), key) + ("†" if r.get("decode_tps_b8_biased") else ""))
        else:
            cells.append(fmt(r.get(key), key))
    return cells


def markdown(report):
    m = report["meta"]
    out = [f"# DeepSeek-OCR vs C3 on the same pages ({m['mode']} mode, {m['device']})", "",
           "Produced by (every invocation on this folder, in order; skipped phases kept their earlier results):", "",
           *[f"    {c}" for c in m.get("commands", [m["command"]])], "",
           f"Machine: {m['machine']}. Threads: {m['threads']}. {m['when']}.", "",
           "| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in report["rows"]:
        out.append("| " + " | ".join(row_cells(r)) + " |")
    out += ["", "## How each figure was obtained", ""]
    out += [f"- {n}" for n in report["notes"]]
    out += ["", "## Pages", "", "| page | source | Qwen tokens | chars | font px | lines | PNG sha256 |",
            "|---|---|---|---|---|---|---|"]
    for p in report["pages"]:
        out.append(f"| [{p['name']}]({p['png']}) | {p['source']} | {p['qwen_tokens']} | {p['chars']} | "
                   f"{p['font_px']} | {p['lines']} | `{p['png_sha256'][:16]}` |")
    out += ["", "![throughput vs compression](throughput_vs_compression.png)", ""]
    return "\n".join(out)


SUMMARY = [("system", "system"), ("config", "configuration"), ("decoder_tokens", "decoder reads"),
           ("compression", "compression"), ("encoder_s", "encoder s"), ("prefill_s", "prefill s"),
           ("ttft_s", "TTFT s"), ("decode_tps_b1", "decode tok/s b1"), ("decode_tps_b8", "b8"),
           ("peak_mib", "peak MiB"), ("pages_per_s", "pages/hour"), ("precision", "precision")]


def summary_markdown(report):
    """The condensed table (OUT/summary.md) that BENCHMARKS.md quotes: pages per hour
    instead of per second, one precision column (measured, else published)."""
    out = ["| " + " | ".join(h for _, h in SUMMARY) + " |", "|" + "---|" * len(SUMMARY)]
    for r in report["rows"]:
        cells = []
        for key, _ in SUMMARY:
            if key == "pages_per_s":
                v = r.get(key)
                cells.append("–" if not v else f"{3600 * v:,.{0 if 3600 * v >= 100 else 1}f}"
                             + ("*" if r.get("pages_per_s_extrapolated") else ""))
            elif key == "precision":
                if r.get("char_precision") is not None:
                    cells.append(f"{100 * r['char_precision']:.1f}% measured")
                elif r.get("published_precision") is not None:
                    cells.append(f"{100 * r['published_precision']:.1f}% published")
                else:
                    cells.append("–")
            elif key == "decode_tps_b8":
                cells.append(fmt(r.get(key), key) + ("†" if r.get("decode_tps_b8_biased") else ""))
            elif key == "system":
                cells.append({"deepseek-ocr-2": "DeepSeek-OCR-2 (HF)", "c3": "C3 (c3, ORT)",
                              "c3-hf": "C3 (HF)"}.get(r[key], r[key]))
            elif key == "config" and r.get("busy"):
                cells.append(f"{r['config']} ‡")
            elif key == "config" and r["system"] == "c3-hf":
                cells.append(r[key].replace("HF transformers ", "release shape "))
            else:
                cells.append(fmt(r.get(key), key))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("\\* extrapolated from a few timed decode steps (quick mode); all other figures measured. "
               "† c3 bench's batch-8 figure over a few steps includes 7 rows' prefills (see report.md): not a decode rate. "
               "‡ another job shared the CPU during that measurement (load average in report.json).")
    return "\n".join(out)


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fox = published_fox()
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5.5))
    colors = {"deepseek-ocr-2": "tab:red", "c3": "tab:blue", "c3-hf": "tab:cyan"}
    for r in report["rows"]:
        if not r.get("pages_per_s") or not r.get("compression"):
            continue
        c = colors.get(r["system"], "tab:gray")
        mk = "o" if r["weights"].startswith("random") else "s"
        a.scatter(r["compression"], r["pages_per_s"], color=c, marker=mk, s=40)
        lab = r["config"]
        if r.get("published_precision") is not None:
            lab += f"\npub. {100 * r['published_precision']:.1f}%"
        if r.get("char_precision") is not None:
            lab += f"\nmeas. {100 * r['char_precision']:.1f}%"
        a.annotate(lab, (r["compression"], r["pages_per_s"]), fontsize=6.5, xytext=(4, 3),
                   textcoords="offset points", color=c)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("compression (text tokens / tokens the decoder reads)")
    a.set_ylabel("pages per second, whole page reconstructed")
    a.set_title("cost: measured here (o random weights, s shipped/real weights)", fontsize=9)
    a.grid(True, which="both", alpha=0.3)
    from matplotlib.lines import Line2D
    a.legend(handles=[Line2D([], [], color=c, marker="o", ls="", label=k) for k, c in colors.items()], fontsize=7)
    series = [("C3 N=32", "ratio_32", "c3_n32", "tab:blue", "-"), ("C3 N=64", "ratio_64", "c3_n64", "tab:blue", "--"),
              ("C3 N=100", "ratio_100", "c3_n100", "tab:blue", ":"),
              ("DeepSeek-OCR v1 64 tok", "ratio_64", "ds_ocr_64", "tab:red", "--"),
              ("DeepSeek-OCR v1 100 tok", "ratio_100", "ds_ocr_100", "tab:red", ":")]
    for name, rx, py, c, ls in series:
        b.plot([r[rx] for r in fox], [100 * r[py] for r in fox], ls=ls, color=c, marker=".", label=name)
    b.set_xlabel("compression (text tokens / N or vision tokens)")
    b.set_ylabel("precision % (published, Fox 600-1300 tokens)")
    b.set_title("accuracy: published (crates/c3-core/src/published.rs), not measured here", fontsize=9)
    b.grid(True, alpha=0.3)
    b.legend(fontsize=7)
    fig.suptitle(f"DeepSeek-OCR-2 vs C3, {report['meta']['mode']} mode, {report['meta']['device']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report, out_dir):
    out_dir = Path(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    (out_dir / "report.md").write_text(markdown(report))
    (out_dir / "summary.md").write_text(summary_markdown(report) + "\n")
    plot(report, out_dir / "throughput_vs_compression.png")
