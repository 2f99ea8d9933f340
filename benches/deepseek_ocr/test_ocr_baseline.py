"""Tests of the DeepSeek-OCR baseline (issue 23): the released-configuration parameter
count, deterministic rendering, the published table parsed from published.rs, the
precision metric, and `--quick` on tiny configurations of both systems end to end.

    HF_HUB_OFFLINE=1 .deps/ocr-venv/bin/python -m unittest benches/deepseek_ocr/test_ocr_baseline.py
(scripts/ocr-baseline.sh --self-test installs the venv and runs this.)
"""

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import dsocr  # noqa: E402
import pages  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402

PAGE = (ROOT / "models" / "demo-page.txt").read_text(encoding="utf-8")


class ParameterCount(unittest.TestCase):
    def test_released_configuration_is_3389m_parameters(self):
        total, parts = dsocr.count_parameters("released")
        self.assertLess(abs(total - dsocr.EXPECTED_PARAMS) / dsocr.EXPECTED_PARAMS, 0.01, total)
        for k, want in dsocr.EXPECTED_PARTS.items():
            self.assertLess(abs(parts[k] - want) / want, 0.01, (k, parts[k]))
        # Not DeepSeek-OCR v1 (CLIP-L instead of the Qwen2-shaped encoder): 3,336,106,240.
        self.assertGreater(abs(total - 3_336_106_240) / 3_336_106_240, 0.01)

    def test_active_parameters_per_token(self):
        self.assertLess(abs(dsocr.active_parameters_per_token() - 574e6) / 574e6, 0.01)

    def test_tiny_is_tiny_and_same_structure(self):
        total, parts = dsocr.count_parameters("tiny")
        self.assertLess(total, 2_000_000)
        self.assertEqual(parts["queries"], (144 + 256) * dsocr.TINY["encoder"]["hidden_size"])


class Rendering(unittest.TestCase):
    def test_same_text_same_bytes(self):
        text = pages.clean(PAGE[:2400])
        _, a, ia = pages.render(text)
        _, b, ib = pages.render(text)
        self.assertEqual(a, b)
        self.assertEqual(ia, ib)
        # ... also in a fresh process (no state shared through the font cache).
        code = ("import sys, hashlib; sys.path.insert(0, sys.argv[1]); import pages; "
                "t = open(sys.argv[2], encoding='utf-8').read(); "
                "print(hashlib.sha256(pages.render(pages.clean(t[:2400]))[1]).hexdigest())")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
            f.write(PAGE)
        try:
            out = subprocess.run([sys.executable, "-c", code, str(HERE), f.name], capture_output=True, text=True,
                                 check=True).stdout.strip()
        finally:
            os.unlink(f.name)
        self.assertEqual(out, hashlib.sha256(a).hexdigest())
        self.assertEqual(a[:8], b"\x89PNG\r\n\x1a\n")

    def test_layout_wraps_and_picks_a_font_size(self):
        short, long_ = pages.clean(PAGE[:800]), pages.clean(PAGE[:2400])
        s_short, lines_short, _ = pages.layout(short)
        s_long, lines_long, _ = pages.layout(long_)
        self.assertGreater(s_short, s_long)  # several sizes: shorter pages get larger type
        from PIL import ImageFont

        font = ImageFont.truetype(str(pages.FONT), s_long)
        width = pages.PAGE_W - 2 * pages.MARGIN
        self.assertTrue(all(font.getlength(l) <= width for l in lines_long))
        # Wrapping loses no word.
        self.assertEqual(" ".join(long_.split()), " ".join(" ".join(lines_long).split()))
        _, d1, _ = pages.render(short)
        self.assertNotEqual(d1, pages.render(long_)[1])

    def test_font_is_the_bundled_one(self):
        self.assertEqual(pages.FONT.name, "DejaVuSans.ttf")
        tracked = subprocess.run(["git", "ls-files", str(pages.FONT.relative_to(ROOT))], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip()
        self.assertEqual(tracked, "crates/c3-plot/assets/DejaVuSans.ttf")


class PublishedAndMetric(unittest.TestCase):
    def test_published_rows_are_published_rs(self):
        fox = report.published_fox()
        self.assertEqual([r["lo"] for r in fox], list(range(600, 1300, 100)))
        self.assertEqual(fox[-1]["ds_ocr_64"], 0.591)  # as crates/c3-core/src/published.rs's own test
        self.assertEqual(report.published_precision("c3", 32, 1250, fox)[0], 0.933)
        self.assertIsNone(report.published_precision("deepseek-ocr-2", 257, 1000, fox)[0])

    def test_char_precision_is_c3s(self):
        self.assertEqual(run.char_precision("abcd", "abcd"), 1.0)
        self.assertAlmostEqual(run.char_precision("abcd", "abce"), 0.75)
        self.assertAlmostEqual(run.char_precision("abcd", "ab"), 0.5)
        self.assertEqual(run.char_precision("", ""), 1.0)
        self.assertEqual(run.levenshtein("kitten", "sitting"), 3)


class QuickTinyReport(unittest.TestCase):
    """--quick on tiny configurations of both systems: both systems, every mode, sane numbers."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        t = Path(cls.tmp.name)
        i = PAGE.index("\n\n", 2000)
        (t / "a.txt").write_text(PAGE[:i], encoding="utf-8")
        (t / "b.txt").write_text(PAGE[i:], encoding="utf-8")
        cls.out = t / "out"
        subprocess.run([sys.executable, str(HERE / "run.py"), str(cls.out), "--quick", "--shape", "tiny",
                        "--texts", str(t / "a.txt"), str(t / "b.txt"), "--c3-n", "4,8",
                        "--c3-shipped", "models/c3-tiny", "--work", str(t / "work")], check=True, cwd=ROOT)
        cls.rep = json.loads((cls.out / "report.json").read_text())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_both_systems_and_every_mode(self):
        rows = self.rep["rows"]
        self.assertEqual({r["system"] for r in rows}, {"deepseek-ocr-2", "c3", "c3-hf"})
        ds = {r["config"]: r for r in rows if r["system"] == "deepseek-ocr-2"}
        self.assertEqual(set(ds), set(dsocr.MODES))
        self.assertEqual(ds["global-768"]["decoder_tokens"], 145)
        self.assertEqual(ds["global-1024"]["decoder_tokens"], 257)
        self.assertEqual(ds["tiles"]["decoder_tokens"], 256 + 6 * 144 + 1)  # 3:4 page -> 2x3 tiles
        c3 = {r["config"]: r for r in rows if r["system"] == "c3"}
        self.assertEqual(set(c3), {"tiny N=4", "tiny N=8", "c3-tiny"})
        self.assertEqual(c3["tiny N=8"]["decoder_tokens"], 8)  # the rewritten checkpoint exports N = 8
        self.assertEqual({c3[k]["timed_with"] for k in ("tiny N=4", "tiny N=8")}, {"c3 bench"})
        self.assertEqual({r["config"] for r in rows if r["system"] == "c3-hf"},
                         {"HF transformers N=4", "HF transformers N=8"})

    def test_every_column_is_a_positive_number(self):
        keys = ["text_tokens", "decoder_tokens", "compression", "encoder_s", "prefill_s", "ttft_s",
                "decode_tps_b1", "decode_tps_b8", "peak_mib", "pages_per_s"]
        for r in self.rep["rows"]:
            for k in keys + (["preprocess_s"] if r["system"] != "c3-hf" else []):
                if k == "decode_tps_b8" and r.get("timed_with", "").startswith("c3 roundtrip"):
                    self.assertIsNone(r[k])  # not measured that way: shown as "–", never made up
                    continue
                v = r.get(k)
                self.assertTrue(isinstance(v, (int, float)) and v > 0 and math.isfinite(v), (r["config"], k, v))
            self.assertAlmostEqual(r["compression"], r["text_tokens"] / r["decoder_tokens"])
            if r["system"] != "c3":  # c3 bench times TTFT and the encoder in separate runs
                self.assertAlmostEqual(r["ttft_s"], r["encoder_s"] + r["prefill_s"])
        quick = [r for r in self.rep["rows"] if r["weights"].startswith("random")]
        self.assertTrue(all(r["pages_per_s_extrapolated"] for r in quick))
        self.assertIn("EXTRAPOLATED", " ".join(self.rep["notes"]))

    def test_shipped_model_reads_the_page_back(self):
        r = next(r for r in self.rep["rows"] if r["config"] == "c3-tiny")
        self.assertFalse(r["pages_per_s_extrapolated"])
        self.assertGreater(r["char_precision"], 0.9)  # a trained model, measured on the same page text

    def test_files(self):
        for f in ("report.md", "report.json", "summary.md", "throughput_vs_compression.png"):
            self.assertGreater((self.out / f).stat().st_size, 500, f)
        md = (self.out / "report.md").read_text()
        self.assertIn("| deepseek-ocr-2 | tiles |", md)
        self.assertIn("(extrapolated)", md)
        self.assertEqual(len(self.rep["pages"]), 2)
        for p in self.rep["pages"]:
            data = (self.out / p["png"]).read_bytes()
            self.assertEqual(hashlib.sha256(data).hexdigest(), p["png_sha256"])


if __name__ == "__main__":
    unittest.main()
