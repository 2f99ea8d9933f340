"""The same pages for both systems: held-out texts of 600-1,300 Qwen tokens, rendered into
page images with a real layout.

Texts: the Linux kernel documentation (`scripts/fetch-corpus.sh --linux`, Debian
linux-doc-6.1), a source no shipped C3 model was trained on. Passages are cut on line
boundaries from the files in name order, one per 100-token bucket of the Fox range
(600-700 ... 1200-1300 Qwen tokens, the paper's buckets), so a run is reproducible.

Layout: the bundled DejaVu Sans (crates/c3-plot/assets/DejaVuSans.ttf, the font the
c3-plot crate bundles), black on white, margins, paragraphs wrapped to the text width,
and the largest font size from FONT_SIZES at which the whole passage fits the page (so
pages of different lengths get different sizes). Rendering is deterministic: the same
text gives the same PNG bytes (tested); nothing time-dependent is written.
"""

import hashlib
import io
import json
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
FONT = ROOT / "crates" / "c3-plot" / "assets" / "DejaVuSans.ttf"
QWEN_TOKENIZER = ROOT / ".deps" / "tokenizers" / "qwen2.5-tokenizer.json"
LINUX_CORPUS = ROOT / "data" / "corpus" / "linux"

# Page canvas: 3:4 like a letter/A4 page. DeepSeek-OCR-2's processor scales it to a 1024
# global view (padded square: 256 + 1 tokens) and, tiles on, cuts it into a 2x3 grid of
# 768 tiles (6 x 144 tokens) — the grid whose aspect ratio is nearest 3:4.
PAGE_W, PAGE_H = 1536, 2048
MARGIN = 96
FONT_SIZES = (30, 28, 26, 24, 22, 20, 18, 16)  # px on the 1536-wide page
LINE_SPACING = 1.25
BUCKETS = [(lo, lo + 100) for lo in range(600, 1300, 100)]


class QwenCounter:
    """Qwen2.5 token counts (the paper's unit) from the tokenizer.json that
    scripts/install-deps.sh installs; only ordinary text is counted, no specials."""

    def __init__(self, path=QWEN_TOKENIZER):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(path))

    def count(self, text):
        return len(self.tok.encode(text, add_special_tokens=False).ids)


def clean(text):
    """Tabs to spaces, trailing spaces off, runs of blank lines to one, and the
    hard-wrapped lines of a plain paragraph (unindented, not a list item) joined into
    one line, as a typeset page shows them; indented blocks (code, lists) keep their
    lines. Both systems get this text: it is what the page shows."""
    lines = [l.replace("\t", "    ").rstrip() for l in text.splitlines()]
    out = []
    for l in lines:
        plain = l and not l.startswith(" ") and not re.match(r"^([-*+]|\d+\.|#\.)\s", l)
        prev_plain = out and out[-1] and not out[-1].startswith(" ") and not re.match(
            r"^([-*+]|\d+\.|#\.)\s", out[-1]) and not out[-1].endswith("::")
        if plain and prev_plain:
            out[-1] += " " + l
        elif l or (out and out[-1]):
            out.append(l)
    return "\n".join(out).strip()


def select_passages(counter, corpus=LINUX_CORPUS, buckets=BUCKETS, per_bucket=1):
    """`per_bucket` passages per bucket [lo, hi) of Qwen tokens: each the longest prefix
    (whole lines) of a corpus file, in file-name order, whose count falls in the
    bucket and that fits one page. A file is used once."""
    files = sorted(p for p in Path(corpus).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no corpus at {corpus}: run scripts/fetch-corpus.sh --linux")
    want = {b: per_bucket for b in buckets}
    out = []
    for f in files:
        if not any(want.values()):
            break
        text = clean(f.read_text(encoding="utf-8", errors="replace"))
        if counter.count(text) < buckets[0][0]:
            continue
        lines = text.split("\n")
        # Grow by lines; remember the longest prefix per still-wanted bucket.
        best = {}
        acc = []
        for line in lines:
            acc.append(line)
            n = counter.count("\n".join(acc))
            if n >= buckets[-1][1]:
                break
            for b in buckets:
                if want[b] and b[0] <= n < b[1]:
                    best[b] = ("\n".join(acc).strip(), n)
        # Take the largest wanted bucket this file reached (long files feed long buckets)
        # whose passage fits one page at the smallest font size.
        for b in sorted(best, reverse=True):
            if want[b]:
                t, n = best[b]
                try:
                    layout(t)
                except ValueError:
                    continue
                out.append({"source": f.name, "text": t, "qwen_tokens": n, "bucket": list(b)})
                want[b] -= 1
                break
    missing = {f"{b[0]}-{b[1]}": k for b, k in want.items() if k}
    if missing:
        raise SystemExit(f"corpus too small for buckets {missing}")
    return sorted(out, key=lambda p: p["qwen_tokens"])


def wrap(text, font, width):
    """Greedy word wrap of every source line to `width` pixels; long words are split."""
    out = []
    for para in text.split("\n"):
        if not para.strip():
            out.append("")
            continue
        indent = len(para) - len(para.lstrip(" "))
        words = para.split()
        line = " " * indent
        for w in words:
            cand = (line + " " + w) if line.strip() else (line + w)
            if font.getlength(cand) <= width:
                line = cand
                continue
            if line.strip():
                out.append(line)
                line = " " * indent
            while font.getlength(line + w) > width:  # a word wider than the column
                k = max(1, len(w) - 1)
                while k > 1 and font.getlength(line + w[:k]) > width:
                    k -= 1
                out.append(line + w[:k])
                w = w[k:]
            line = line + w
        out.append(line)
    return out


def layout(text, sizes=FONT_SIZES, page=(PAGE_W, PAGE_H), margin=MARGIN):
    """(font size, wrapped lines, line height) of the largest size at which `text` fits."""
    w, h = page
    for size in sizes:
        font = ImageFont.truetype(str(FONT), size)
        lines = wrap(text, font, w - 2 * margin)
        step = round(size * LINE_SPACING)
        if len(lines) * step <= h - 2 * margin:
            return size, lines, step
    raise ValueError(f"text of {len(text)} chars does not fit a {w}x{h} page at {sizes[-1]} px")


def render(text, page=(PAGE_W, PAGE_H), margin=MARGIN, sizes=FONT_SIZES):
    """Renders `text` to an RGB page; returns (image, PNG bytes, layout info)."""
    size, lines, step = layout(text, sizes, page, margin)
    font = ImageFont.truetype(str(FONT), size)
    img = Image.new("RGB", page, (255, 255, 255))
    d = ImageDraw.Draw(img)
    y = margin
    for line in lines:
        if line:
            d.text((margin, y), line, font=font, fill=(0, 0, 0))
        y += step
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    data = buf.getvalue()
    info = {"font": FONT.name, "font_px": size, "lines": len(lines), "page_px": list(page),
            "margin_px": margin, "png_sha256": hashlib.sha256(data).hexdigest()}
    return img, data, info


def write_pages(passages, out_dir):
    """Renders every passage; writes page-XX.png and page-XX.txt; returns page records."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = []
    for i, p in enumerate(passages):
        img, data, info = render(p["text"])
        name = f"page-{i:02d}"
        (out_dir / f"{name}.png").write_bytes(data)
        (out_dir / f"{name}.txt").write_text(p["text"] + "\n", encoding="utf-8")
        pages.append({**{k: v for k, v in p.items() if k != "text"}, "name": name,
                      "png": f"pages/{name}.png", "txt": f"pages/{name}.txt",
                      "chars": len(p["text"]), **info, "image": img, "text": p["text"]})
    (out_dir / "pages.json").write_text(json.dumps(
        [{k: v for k, v in p.items() if k not in ("image", "text")} for p in pages], indent=1))
    return pages
