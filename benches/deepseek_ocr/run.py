#!/usr/bin/env python3
"""DeepSeek-OCR-2 and C3 on the same pages, one run, one report (issue 23).

    run.py OUT [--quick] [--device cpu|cuda] [--shape released|tiny] ...

Phases, each in its own process so one system's memory never overlaps the other's and
each peak is that system's own: pages (select + render) -> DeepSeek-OCR-2 (HF
transformers) -> C3 through the `c3` binary (ONNX Runtime) -> C3 in HF transformers
(same-framework ratio) -> report (OUT/report.json, report.md, throughput_vs_compression.png).
Use scripts/ocr-baseline.sh, which installs the venv first.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import pages as P  # noqa: E402
import report as R  # noqa: E402


def log(*a):
    print("[ocr-baseline]", *a, file=sys.stderr, flush=True)


class Paused:
    """SIGSTOPs the process in $OCR_PAUSE_PID, or the one whose id $OCR_PAUSE_PID_FILE
    holds (read at every measurement: the job may be replaced during a long run), while a
    timed measurement runs, and always SIGCONTs it afterwards. Also records the 1-minute
    load average before and after (a busy machine shows in the report)."""

    def __enter__(self):
        f = os.environ.get("OCR_PAUSE_PID_FILE")
        try:
            self.pid = int(Path(f).read_text().strip()) if f else int(os.environ.get("OCR_PAUSE_PID") or 0)
        except (OSError, ValueError):
            self.pid = 0
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGSTOP)
            except ProcessLookupError:
                self.pid = 0
        return self

    def __exit__(self, *exc):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine():
    cpu = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {len(os.sched_getaffinity(0))} usable CPUs, {mem:.0f} GiB"


def load_pages(out):
    """The rendered pages' records plus their text and a fresh render (deterministic)."""
    recs = json.loads((out / "pages" / "pages.json").read_text())
    for r in recs:
        r["text"] = (out / r["txt"]).read_text(encoding="utf-8").rstrip("\n")
        t0 = time.perf_counter()
        img, data, _ = P.render(r["text"])
        r["render_s"] = time.perf_counter() - t0
        r["image"] = img
        if R_sha(data) != r["png_sha256"]:
            raise SystemExit(f"{r['name']}: re-render differs from the written page")
    return recs


def R_sha(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


def timed_pages(recs, quick):
    """Quick: the median-length page; full: every page."""
    if quick:
        return [sorted(recs, key=lambda r: r["qwen_tokens"])[len(recs) // 2]]
    return recs


def tokenize_s(text):
    """Tokenizing a page with the Qwen tokenizer (HF tokenizers, Rust): C3's preprocessing."""
    c = P.QwenCounter()
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        c.count(text)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# ---------------------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------------------
def phase_pages(a):
    out = a.out / "pages"
    counter = P.QwenCounter()
    if a.texts:
        passages = []
        for f in a.texts:
            t = P.clean(Path(f).read_text(encoding="utf-8"))
            passages.append({"source": Path(f).name, "text": t, "qwen_tokens": counter.count(t), "bucket": None})
    else:
        passages = P.select_passages(counter)
        if a.pages:
            passages = [passages[round(i * (len(passages) - 1) / max(1, a.pages - 1))] for i in range(a.pages)]
    recs = P.write_pages(passages, out)
    log(f"{len(recs)} pages -> {out}: " + ", ".join(f"{r['qwen_tokens']} tok @ {r['font_px']} px" for r in recs))


def device_dtype(a):
    import torch

    dev = torch.device(a.device)
    # fp32 on CPU (4x faster than bf16 on this AVX2 CPU, issue 23); bf16 (released) on GPUs.
    return dev, (torch.float32 if dev.type == "cpu" else torch.bfloat16)


def phase_dsocr(a):
    import torch

    import dsocr as D

    torch.set_num_threads(a.threads)
    dev, dtype = device_dtype(a)
    recs = load_pages(a.out)
    rows = []
    if a.ocr_checkpoint:
        rows = dsocr_real(a, recs, dev, dtype)
    else:
        t0 = time.perf_counter()
        model = D.build(a.shape, dtype).to(dev)
        build_s = time.perf_counter() - t0
        log(f"DeepSeek-OCR-2 ({a.shape}) built in {build_s:.0f} s, {sum(p.numel() for p in model.parameters()):,} parameters")
        proc = D.image_processor()
        for page in timed_pages(recs, a.quick):
            for mode in D.MODES:
                t0 = time.perf_counter()
                with Paused():
                    r = D.time_mode(model, proc, page, mode, decode_tokens=page["qwen_tokens"],
                                    quick_steps=a.quick_steps, full=not a.quick, device=dev, dtype=dtype)
                log(f"  {page['name']} {mode}: {time.perf_counter() - t0:.0f} s")
                rows.append({**r, "page": page["name"], "text_tokens": page["qwen_tokens"], "render_s": page["render_s"]})
    part = {"rows": rows, "peak_mib": peak_mib(), "shape": a.shape, "dtype": str(dtype), "torch": torch.__version__,
            "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        part["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    (a.out / "parts").mkdir(exist_ok=True)
    (a.out / "parts" / "dsocr.json").write_text(json.dumps(part, indent=1))


def levenshtein(a, b):
    """Character edit distance (two-row dynamic programming)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_precision(reference, output):
    """1 - edit distance / max length, over characters: `c3 eval`'s definition
    (crates/c3-core/src/metrics.rs)."""
    reference, output = reference.strip(), output.strip()
    d = max(len(reference), len(output))
    return 1.0 if d == 0 else 1 - levenshtein(reference, output) / d


def dsocr_real(a, recs, dev, dtype):
    """Real weights from a local folder: the processor and tokenizer from the same folder,
    the released prompt, greedy generation until the model stops; text scored."""
    import torch
    from transformers import AutoProcessor, DeepseekOcr2ForConditionalGeneration

    import dsocr as D

    proc = AutoProcessor.from_pretrained(a.ocr_checkpoint, local_files_only=True)
    model = DeepseekOcr2ForConditionalGeneration.from_pretrained(a.ocr_checkpoint, dtype=dtype).to(dev).eval()
    tok = proc.tokenizer
    rows = []
    for page in recs if not a.quick else timed_pages(recs, True):
        for mode in D.MODES:
            kw = {"crop_to_patches": mode != "global-768"}
            inputs = proc(images=page["image"], text=f"{proc.image_token}\nFree OCR. ", return_tensors="pt", **kw)
            if mode == "global-1024":
                inputs.pop("pixel_values_local", None)
                inputs["num_local_patches"] = torch.zeros_like(torch.as_tensor(inputs["num_local_patches"]))
                n_img = (inputs["input_ids"] == proc.image_token_id).sum().item()
                # The processor counted the tiles' tokens: rebuild the prompt without them.
                keep = 256 + 1
                ids = inputs["input_ids"][0].tolist()
                first = ids.index(proc.image_token_id)
                ids = ids[:first] + [proc.image_token_id] * keep + ids[first + n_img:]
                inputs["input_ids"] = torch.tensor([ids])
                inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
            n_img = int((inputs["input_ids"] == proc.image_token_id).sum())
            inputs = {k: (v.to(dev) if hasattr(v, "to") else v) for k, v in inputs.items()}
            for k in ("pixel_values", "pixel_values_local"):
                if k in inputs:
                    inputs[k] = inputs[k].to(dtype)
            t0 = time.perf_counter()
            with torch.inference_mode():
                gen = model.generate(**inputs, max_new_tokens=int(page["qwen_tokens"] * 1.5) + 64, do_sample=False,
                                     no_repeat_ngram_size=20)
            dt = time.perf_counter() - t0
            new = gen[0, inputs["input_ids"].shape[1]:]
            text = tok.decode(new, skip_special_tokens=True)
            rows.append({"mode": mode, "decoder_input_tokens": n_img, "page": page["name"],
                         "text_tokens": page["qwen_tokens"], "render_s": page["render_s"], "generate_s": dt,
                         "generated_tokens": int(new.shape[0]), "char_precision": char_precision(page["text"], text),
                         "output": text, "real_weights": True})
            log(f"  {page['name']} {mode}: {dt:.0f} s, char precision {100 * rows[-1]['char_precision']:.1f}%")
    return rows


def c3_configs(a):
    """(label, weights, how to get an export) for every C3 row."""
    cfgs = [{"label": Path(m).name, "weights": "shipped (trained)", "shipped": str(ROOT / m)} for m in a.c3_shipped]
    preset = {"released": ("c3-release-shape", 32), "tiny": ("tiny", 4)}[a.shape]
    for n in a.c3_n:
        cfgs.append({"label": f"{preset[0]} N={n}", "weights": "random (c3 init)", "preset": preset[0],
                     "preset_n": preset[1], "n": n})
    return cfgs


def phase_c3(a):
    import c3side as C

    recs = load_pages(a.out)
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    part_path = a.out / "parts" / "c3.json"
    (a.out / "parts").mkdir(exist_ok=True)
    rows = json.loads(part_path.read_text())["rows"] if part_path.exists() else []
    done = {(r["config"], r["page"]) for r in rows}
    for cfg in c3_configs(a):
        if all((cfg["label"], p["name"]) in done for p in timed_pages(recs, a.quick)):
            log(f"{cfg['label']}: already in {part_path}")
            continue
        t0 = time.perf_counter()
        if "shipped" in cfg:
            ex = C.export(cfg["shipped"], work / f"{Path(cfg['shipped']).name}-export")
        else:
            base = C.init_checkpoint(cfg["preset"], work / f"{cfg['preset']}-n{cfg['preset_n']}")
            ck = C.with_latents(base, cfg["n"], work / f"{cfg['preset']}-n{cfg['n']}")
            ex = C.export(ck, work / f"{cfg['preset']}-n{cfg['n']}-export")
        prep_s = time.perf_counter() - t0
        man = C.manifest(ex)
        n = man["n_latents"]
        plen = len(man["prompt"]["ids"])
        window = man.get("window_tokens") or man["max_text_tokens"]
        for page in timed_pages(recs, a.quick):
            T = page["qwen_tokens"]
            tok_s = tokenize_s(page["text"])
            if "shipped" in cfg:
                # Trained models: the whole page, windowed as the model needs, real output.
                with Paused():
                    rt = C.roundtrip(ex, page["text"])
                    b = C.bench(ex, min(window, rt["text_tokens"]), 8 if a.quick else 32)
                rows.append({"config": cfg["label"], "weights": cfg["weights"], "page": page["name"], "text_tokens": T,
                             "model_text_tokens": rt["text_tokens"], "windows": rt["n_windows"],
                             "n_latents": n, "decoder_tokens": rt["latent_tokens"], "prompt_tokens": plen,
                             "tokenize_s": tok_s, "bench": b, "roundtrip": {k: v for k, v in rt.items() if k not in ("output_ids",)},
                             "export_prep_s": prep_s})
                continue
            if T > man["max_text_tokens"]:
                raise SystemExit(f"page of {T} tokens exceeds the export's max_text_tokens {man['max_text_tokens']}")
            row = {"config": cfg["label"], "weights": cfg["weights"], "page": page["name"], "text_tokens": T,
                   "model_text_tokens": T, "windows": 1, "n_latents": n, "decoder_tokens": n, "prompt_tokens": plen,
                   "tokenize_s": tok_s, "export_prep_s": prep_s}
            with Paused():
                if a.c3_bench_n is None or n in a.c3_bench_n:
                    row["bench"] = C.bench(ex, T, a.quick_steps + 2 if a.quick else T)
                else:
                    row["rt_timing"] = C.roundtrip_timing(ex, page["text"], a.quick_steps)
                if not a.quick:
                    rt = C.roundtrip(ex, page["text"], max_new_tokens=T, no_repeat=0)
                    row["roundtrip"] = {k: v for k, v in rt.items() if k not in ("output_ids", "text")}
            rows.append(row)
            part_path.write_text(json.dumps({"rows": rows}, indent=1))
        if a.drop_exports and "shipped" not in cfg:
            import shutil

            shutil.rmtree(ex, ignore_errors=True)
            if ck != base:
                shutil.rmtree(ck, ignore_errors=True)
    part_path.write_text(json.dumps({"rows": rows}, indent=1))


def phase_hfc3(a):
    import torch

    import hfc3 as H

    torch.set_num_threads(a.threads)
    dev, dtype = device_dtype(a)
    recs = load_pages(a.out)
    page = timed_pages(recs, True)[0]
    T = page["qwen_tokens"]
    d_dec = H.SHAPES[a.shape]["decoder"][1]
    t0 = time.perf_counter()
    enc = H.build_one(a.shape, "encoder", dtype).to(dev)
    log(f"HF C3 encoder ({a.shape}) built in {time.perf_counter() - t0:.0f} s")
    lats = {}
    for n in a.c3_n:
        with Paused():
            lats[n] = H.time_encoder(enc, n, T, d_dec, device=dev, dtype=dtype)
        log(f"  HF C3 encoder N={n} {page['name']}: {lats[n][1]:.1f} s")
    enc_peak = peak_mib()
    del enc
    import gc

    gc.collect()
    t0 = time.perf_counter()
    dec = H.build_one(a.shape, "decoder", dtype).to(dev)
    log(f"HF C3 decoder ({a.shape}) built in {time.perf_counter() - t0:.0f} s")
    rows = []
    for n in a.c3_n:
        lat, t_enc = lats[n]
        t0 = time.perf_counter()
        with Paused():
            r = H.time_decoder(dec, lat, T, quick_steps=a.quick_steps, device=dev, dtype=dtype)
        log(f"  HF C3 decoder N={n} {page['name']}: {time.perf_counter() - t0:.0f} s")
        rows.append({**r, "encoder_s": t_enc, "ttft_s": t_enc + r["prefill_s"], "page": page["name"],
                     "text_tokens": T})
    rows_peak = {"encoder_phase_peak_mib": enc_peak}
    part = {"rows": rows, "peak_mib": peak_mib(), **rows_peak, "dtype": str(dtype), "torch": torch.__version__}
    (a.out / "parts").mkdir(exist_ok=True)
    (a.out / "parts" / "hfc3.json").write_text(json.dumps(part, indent=1))


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------
def phase_report(a):
    parts = {k: json.loads((a.out / "parts" / f"{k}.json").read_text())
             for k in ("dsocr", "c3", "hfc3") if (a.out / "parts" / f"{k}.json").exists()}
    recs = json.loads((a.out / "pages" / "pages.json").read_text())
    fox = R.published_fox()
    rows = []
    ext = "extrapolated"
    for r in parts.get("dsocr", {}).get("rows", []):
        T, n = r["text_tokens"], r["decoder_input_tokens"]
        pub, lab = R.published_precision("deepseek-ocr-2", n, T, fox)
        if r.get("real_weights"):
            rows.append({"system": "deepseek-ocr-2", "config": r["mode"], "weights": "real (--ocr-checkpoint)",
                         "page": r["page"], "text_tokens": T, "decoder_tokens": n, "compression": T / n,
                         "preprocess_s": r["render_s"], "pages_per_s": 1 / (r["render_s"] + r["generate_s"]),
                         "pages_per_s_extrapolated": False, "char_precision": r["char_precision"],
                         "peak_mib": parts["dsocr"]["peak_mib"], "published_precision": pub, "published_label": lab})
            continue
        page_s = r["render_s"] + r["image_processor_s"] + r["ttft_s"] + r["decode_page_s"]
        rows.append({"system": "deepseek-ocr-2", "config": r["mode"], "weights": f"random ({a.shape} architecture)",
                     "page": r["page"], "text_tokens": T, "decoder_tokens": n, "compression": T / n,
                     "preprocess_s": r["render_s"] + r["image_processor_s"], "encoder_s": r["encoder_s"],
                     "prefill_s": r["prefill_s"], "ttft_s": r["ttft_s"], "decode_tps_b1": r["decode_tokens_per_s_b1"],
                     "decode_tps_b8": r["decode_tokens_per_s_b8"], "peak_mib": parts["dsocr"]["peak_mib"],
                     "pages_per_s": 1 / page_s, "pages_per_s_extrapolated": r["decode_page_extrapolated"],
                     "published_precision": pub, "published_label": lab, "raw": r})
    import c3side as C

    # Shipped models first, then by N (the c3 phase may have run its configurations in any order).
    c3_rows = sorted(parts.get("c3", {}).get("rows", []),
                     key=lambda r: (not r["weights"].startswith("shipped"), r["n_latents"], r["config"]))
    # Step-time growth with the cache position, from the `c3 bench` rows (per shape): used to
    # extrapolate the rows timed with `c3 roundtrip`, which time steps at the start only.
    growth = {}
    for r in c3_rows:
        if "bench" in r and r["weights"].startswith("random"):
            growth.setdefault(r["config"].split(" N=")[0], r["bench"]["runtime"]["decode_step_ms_by_position"])
    for r in c3_rows:
        T, n = r["text_tokens"], r["n_latents"]
        pub, lab = R.published_precision("c3", n, T, fox) if r["windows"] == 1 else (None, "windowed model")
        row = {"system": "c3", "config": r["config"], "weights": r["weights"], "page": r["page"], "text_tokens": T,
               "decoder_tokens": r["decoder_tokens"], "compression": T / r["decoder_tokens"],
               "preprocess_s": r["tokenize_s"], "published_precision": pub, "published_label": lab, "raw": r}
        if "bench" in r:
            b = r["bench"]["runtime"]
            row.update({"encoder_s": 1 / b["docs_per_second"], "prefill_s": b["request_prefill_ms_whole_prompt"] / 1e3,
                        "ttft_s": b["time_to_first_token_ms"] / 1e3, "decode_tps_b1": b["decode_tokens_per_second_b1"],
                        "decode_tps_b8": b["decode_tokens_per_second_b8"], "peak_mib": r["bench"]["_peak_rss_mib"],
                        "bench_doc_tokens": r["bench"]["doc_tokens"], "timed_with": "c3 bench",
                        # c3 bench starts its batch-8 clock at row 0's first token, which comes out
                        # of row 0's prefill; rows 1-7 prefill after it (one prefill per row), so
                        # their prefills fall inside the timed steps. Over a few steps that
                        # dominates: flagged, not a decode-step figure.
                        "decode_tps_b8_biased": r["bench"]["new_tokens"] < 32,
                        "loadavg_1min": r["bench"].get("_loadavg_1min")})
            la = r["bench"].get("_loadavg_1min") or []
            # This machine has 2 cores and c3 uses both: a 1-min load clearly above 2 at the
            # end of the run means another job shared the CPU during it. (The value before
            # includes whatever ran just before, e.g. the unpaused export.)
            if la and la[-1] > 2.6:
                row["busy"] = f"another job shared the CPU (1-min load {la[0]:.1f} before, {la[1]:.1f} after)"
            by, s0 = b["decode_step_ms_by_position"], 1 / b["decode_tokens_per_second_b1"]
        else:
            t = r["rt_timing"]
            row.update({"encoder_s": t["encoder_s"], "prefill_s": t["prefill_s"], "ttft_s": t["encoder_s"] + t["prefill_s"],
                        "decode_tps_b1": 1 / t["step_s"], "decode_tps_b8": None, "peak_mib": t["peak_mib"],
                        "timed_with": "c3 roundtrip (1 and 1+k tokens)"})
            by, s0 = growth.get(r["config"].split(" N=")[0]), t["step_s"]
        rt = r.get("roundtrip")
        if rt is not None:
            row["pages_per_s"] = 1 / (r["tokenize_s"] + rt["encode_seconds"] + rt["decode_seconds"])
            row["pages_per_s_extrapolated"] = False
            row["peak_mib"] = max(row["peak_mib"], rt["_peak_rss_mib"])
            if r["weights"].startswith("shipped"):
                row["char_precision"] = rt["char_precision"]
                row["output_windows_stopped_early"] = sum(1 for w in rt["windows"] if w.get("short"))
            else:
                gen = sum(w["generated"] for w in rt["windows"])
                row["whole_page_generated_tokens"] = gen
                if gen < T:
                    row["note"] = f"stopped after {gen} of {T} tokens (random weights hit a stop id)"
        else:
            # Extrapolated: T-1 steps after the first token, from the batch-1 step time at the
            # start scaled by how the measured step time grows with the cache position.
            plen = r["prompt_tokens"]
            s1 = s0 * (C.step_at(by, plen + T - 1) / C.step_at(by, plen) if by else 1.0)
            row["pages_per_s"] = 1 / (r["tokenize_s"] + row["ttft_s"] + (T - 1) * (s0 + s1) / 2)
            row["pages_per_s_extrapolated"] = True
        rows.append(row)
    for r in parts.get("hfc3", {}).get("rows", []):
        T, n = r["text_tokens"], r["n_latents"]
        pub, lab = R.published_precision("c3", n, T, fox)
        rows.append({"system": "c3-hf", "config": f"HF transformers N={n}", "weights": f"random ({a.shape} shape)",
                     "page": r["page"], "text_tokens": T, "decoder_tokens": n, "compression": T / n,
                     "encoder_s": r["encoder_s"], "prefill_s": r["prefill_s"], "ttft_s": r["ttft_s"],
                     "decode_tps_b1": r["decode_tokens_per_s_b1"], "decode_tps_b8": r["decode_tokens_per_s_b8"],
                     "peak_mib": parts["hfc3"]["peak_mib"],
                     "pages_per_s": 1 / (r["ttft_s"] + r["decode_page_s"]), "pages_per_s_extrapolated": True,
                     "published_precision": pub, "published_label": lab, "raw": r})
    notes = notes_for(a, parts)
    cmds = a.out / "parts" / "commands.txt"
    commands = cmds.read_text().splitlines() if cmds.exists() else [a.command]
    report = {"meta": {"mode": "quick" if a.quick else "full", "device": a.device, "shape": a.shape,
                       "command": a.command, "commands": commands, "machine": machine(), "threads": a.threads,
                       "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "torch": parts.get("dsocr", {}).get("torch"), "transformers": transformers_version(),
                       "published_source": "crates/c3-core/src/published.rs"},
              "rows": rows, "pages": recs, "notes": notes}
    R.write(report, a.out)
    log(f"wrote {a.out / 'report.md'}")


def transformers_version():
    try:
        import transformers

        return transformers.__version__
    except ImportError:
        return None


def notes_for(a, parts):
    q = a.quick
    n = [
        "Pages: held-out Linux kernel docs (Debian linux-doc-6.1), one passage per Fox bucket of 100 Qwen tokens, "
        "rendered 1536x2048 with the bundled DejaVu Sans (benches/deepseek_ocr/pages.py); text tokens counted with "
        "the Qwen2.5 tokenizer (C3's unit). Both systems get the same text (C3) / its page image (DeepSeek-OCR)."
        if not a.texts else "Pages: the given text files, rendered with benches/deepseek_ocr/pages.py.",
        "Decode length = the page's text tokens (Qwen), forced: random weights never stop, so stop tokens are not checked.",
        "DeepSeek-OCR-2: HF transformers 5.23.0 `deepseek_ocr2`, "
        + ("random weights at the released architecture (3,389,119,360 parameters); " if a.shape == "released" else "tiny test configuration; ")
        + f"{parts.get('dsocr', {}).get('dtype', '?')}"
        + (" (fp32 on CPU: ~4x faster than the released bf16 on this AVX2 CPU)" if a.device == "cpu" else "")
        + ". Preprocess = render + image processor; encoder = SAM + visual encoder + projector over the mode's views; "
        "prefill = decoder over BOS + image tokens + 4 prompt ids; TTFT = encoder + prefill (pixels in hand).",
        "C3 (`c3` rows): this project's ONNX Runtime cascade, fp32 export, default ONNX Runtime threads. Encoder = "
        "1 / `c3 bench` docs_per_second with --docs 1 --doc-tokens = the page's tokens; prefill = request_prefill_ms_whole_prompt; "
        "TTFT = time_to_first_token_ms (compress + first token, ids in hand); decode b1/b8 = decode_tokens_per_second_b1/_b8; "
        "peak = the c3 process's max RSS (/usr/bin/time). Preprocess = tokenizing the page (HF tokenizers, Qwen2.5 tokenizer.json). "
        "Rows timed with `c3 roundtrip` instead (--c3-bench-n): encoder = encode_seconds, prefill = decode_seconds of a "
        "1-token run, decode step = (decode_seconds of a 1+k-token run - that) / k, one cold run per process; no batch-8 figure.",
        "Shipped C3 models (c3-tiny, c3-small): windowed (40 / 128 model tokens per window, N = 8 / 16 latents each); "
        "pages/s and char precision from `c3 roundtrip` of the whole page (real output, real stops); the c3 bench figures are per window.",
        "c3-hf rows: the same C3 cascade in HF transformers (benches/deepseek_ocr/hfc3.py, random weights, "
        f"{parts.get('hfc3', {}).get('dtype', '?')}), always quick: the same-framework comparison with DeepSeek-OCR-2. "
        "Encoder and decoder are built and timed one after the other (latents handed over), so their peak is the "
        "larger of the two phases, not both models resident at once.",
        "‡ measured while another job shared the CPU (1-min load average above 2.6 on 2 cores at the end "
        "of the c3 bench run; both values in report.json): slower than on an idle machine.",
        "† c3 bench's batch-8 decode figure with fewer than 32 new tokens: its clock starts at row 0's first "
        "token, which row 0's prefill yields, and rows 1-7 are prefilled after it (one prefill per row), so 7 "
        "prefills fall inside the few timed steps: biased low (at the release shape below batch 1), not comparable "
        "with the other batch-8 figures.",
        "Published precision: the paper's Fox tables (crates/c3-core/src/published.rs), at the page's 100-token bucket; "
        "DeepSeek-OCR figures there are v1's at 64/100 vision tokens; there is no published Fox figure for OCR-2's 145/257/1121-token modes.",
        "Peak memory of the Python systems: the phase process's max RSS (weights + activations).",
    ]
    if q:
        n.append("QUICK mode: one page (the median length) is timed; decode is timed for a few steps at the start and "
                 "at the page's end position (DeepSeek-OCR/HF: a synthetic KV cache of that length; c3: `c3 bench`'s "
                 "decode_step_ms_by_position at 16/256/1024, linear between them) and pages/s is EXTRAPOLATED as "
                 "preprocess + TTFT + (T-1) x the mean of the start and end step times (exact if the step time is "
                 "linear in the position). Every other figure is measured.")
    else:
        n.append("FULL mode: every page, whole pages decoded (DeepSeek-OCR: greedy loop of T tokens; c3: "
                 "`c3 roundtrip --max-new-tokens T --no-repeat-ngram-size 0`), pages/s measured.")
    return n


def run_phase(name, a):
    """Runs one phase in a fresh Python process (its own memory and peak)."""
    cmd = [sys.executable, str(Path(__file__)), "_phase", name] + a.argv
    log(f"phase {name}")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    log(f"phase {name} done in {time.perf_counter() - t0:.0f} s")


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--quick", action="store_true", help="time a few tokens per stage, extrapolate pages/s (labelled)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--shape", default="released", choices=["released", "tiny"],
                    help="released architectures (default) or tiny test configurations of both systems")
    ap.add_argument("--pages", type=int, default=0, help="use this many of the 7 bucket pages (0: all)")
    ap.add_argument("--texts", nargs="*", help="page texts instead of the Linux-docs corpus")
    ap.add_argument("--c3-n", default="32,64,100,256", help="C3 latent counts at the preset's shape")
    ap.add_argument("--c3-bench-n", default=None,
                    help="N values timed with the full `c3 bench` (default: all); the others with two "
                         "`c3 roundtrip` runs (no batch-8 figure)")
    ap.add_argument("--c3-shipped", default="models/c3-tiny,models/c3-small", help="shipped models ('' for none)")
    ap.add_argument("--no-hf-c3", action="store_true", help="skip the C3-in-HF-transformers rows")
    ap.add_argument("--ocr-checkpoint", type=Path, help="real DeepSeek-OCR-2 weights (a local HF folder)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--quick-steps", type=int, default=3, help="decode steps per measurement in quick mode")
    ap.add_argument("--work", type=Path, default=ROOT / "target" / "ocr-baseline", help="checkpoints and exports")
    ap.add_argument("--drop-exports", action="store_true", help="delete each random-weight export after use (disk)")
    ap.add_argument("--skip", default="", help="phases to skip (comma list of dsocr,c3,hfc3), e.g. to re-report")
    a = ap.parse_args(argv)
    a.c3_n = [int(x) for x in a.c3_n.split(",") if x]
    a.c3_bench_n = None if a.c3_bench_n is None else [int(x) for x in a.c3_bench_n.split(",") if x]
    a.c3_shipped = [x for x in a.c3_shipped.split(",") if x]
    a.skip = {x for x in a.skip.split(",") if x}
    a.out = a.out.resolve()
    a.argv = argv
    a.command = os.environ.get("OCR_BASELINE_COMMAND") or "benches/deepseek_ocr/run.py " + shlex.join(argv)
    return a


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "_phase":
        name, a = sys.argv[2], parse(sys.argv[3:])
        {"pages": phase_pages, "dsocr": phase_dsocr, "c3": phase_c3, "hfc3": phase_hfc3}[name](a)
        return
    a = parse(sys.argv[1:])
    a.out.mkdir(parents=True, exist_ok=True)
    # Every invocation on this OUT is recorded: a report assembled over several runs
    # (phases skipped or resumed) names all the commands that produced it.
    (a.out / "parts").mkdir(exist_ok=True)
    with open(a.out / "parts" / "commands.txt", "a") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + "\t" + a.command + "\n")
    t0 = time.perf_counter()
    phase_pages(a)
    for name in ("dsocr", "c3", "hfc3"):
        if name in a.skip or (name == "hfc3" and (a.no_hf_c3 or a.ocr_checkpoint)):
            continue
        run_phase(name, a)
    phase_report(a)
    log(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
