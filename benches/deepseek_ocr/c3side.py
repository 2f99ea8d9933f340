"""C3 on the same texts, through this project's `c3` binary (ONNX Runtime cascade).

- Random weights at a preset's shape (`c3 init --preset ...`), at any N: the presets
  write N = 32 (release shape) or 4 (tiny); another N is made by rewriting the
  checkpoint's `latent_token_len` (config.json) and its learned queries `model.Q.weight`
  ([N, D_enc], fresh random rows), every other file hard-linked, then `c3 export`.
- The shipped models (`models/c3-tiny`, `models/c3-small`): exported as they are.
Timing comes from `c3 bench` (encoder, time to first token, decoder prefill with the N
latents, decode tokens/s at batch 1 and 8, decode step time by cache position, peak RSS)
on a document of the page's length, and whole pages from `c3 roundtrip` on the page text
(full mode; the shipped models always, since they are trained: real output and char
precision).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
C3 = Path(os.environ.get("C3_BIN", ROOT / "target" / "release" / "c3"))
LAST_MAJOR_FAULTS = 0


def log(*a):
    print("[c3side]", *a, file=sys.stderr, flush=True)


def run_c3(args, *, json_out=True):
    """Runs the c3 binary; returns (parsed last JSON line or stdout, wall s, peak RSS MiB).
    Major page faults (weights read back from disk: the export's weights are file-mapped)
    are kept in LAST_MAJOR_FAULTS."""
    global LAST_MAJOR_FAULTS
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cmd = ["/usr/bin/time", "-f", "%M %F", "-o", rss.name, str(C3)] + [str(a) for a in args]
        log("$ " + " ".join(cmd[5:]))
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"c3 {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
        kb, faults = rss.read().strip().splitlines()[-1].split()
        peak, LAST_MAJOR_FAULTS = int(kb) / 1024, int(faults)
    if not json_out:
        return p.stdout, wall, peak
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON from c3 {args}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return json.loads(lines[-1]), wall, peak


def init_checkpoint(preset, out, dtype=None, seed=0):
    out = Path(out)
    if (out / "config.json").exists():
        return out
    args = ["init", "--preset", preset, "--seed", seed, "--force"]
    if dtype:
        args += ["--dtype", dtype]
    run_c3(args + [out], json_out=False)
    return out


def with_latents(base, n, out, seed=0):
    """A copy of checkpoint `base` with N = n learned queries (random rows, the dtype and
    scale of the original's), hard-linking every file but config.json and Q's shard."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    base, out = Path(base), Path(out)
    cfg = json.loads((base / "config.json").read_text())
    if cfg["latent_token_len"] == n:
        return base
    if (out / ".done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    index = base / "model.safetensors.index.json"
    q_file = (json.loads(index.read_text())["weight_map"]["model.Q.weight"] if index.exists()
              else "model.safetensors")
    for src in base.rglob("*"):
        rel = src.relative_to(base)
        dst = out / rel
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif rel.as_posix() not in ("config.json", q_file):
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    tensors = {}
    with safe_open(str(base / q_file), "pt") as f:
        meta = f.metadata()
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    q = tensors["model.Q.weight"]
    g = torch.Generator().manual_seed(seed + n)
    std = float(q.float().std()) or 0.02
    tensors["model.Q.weight"] = (torch.randn(n, q.shape[1], generator=g) * std).to(q.dtype)
    save_file(tensors, str(out / q_file), metadata=meta)
    del tensors
    if index.exists():  # the index records the total size: Q grew
        idx = json.loads(index.read_text())
        if "metadata" in idx and "total_size" in idx["metadata"]:
            idx["metadata"]["total_size"] += (n - q.shape[0]) * q.shape[1] * q.element_size()
        (out / index.name).unlink()
        (out / index.name).write_text(json.dumps(idx, indent=2))
    cfg["latent_token_len"] = n
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    (out / ".done").touch()
    return out


def export(ckpt, out, dtype="fp32"):
    out = Path(out)
    if (out / "c3-export.json").exists():
        return out
    run_c3(["export", ckpt, "--out", out, "--dtype", dtype, "--force"], json_out=False)
    return out


def manifest(export_dir):
    return json.loads((Path(export_dir) / "c3-export.json").read_text())


def bench(export_dir, doc_tokens, new_tokens):
    """`c3 bench` on one document of `doc_tokens` ids (the page's length, capped at one
    window): the runtime figures plus the process peak."""
    load0 = os.getloadavg()[0]
    r, wall, peak = run_c3(["bench", "--model", export_dir, "--doc-tokens", doc_tokens, "--docs", 1,
                            "--new-tokens", new_tokens, "--repeat", 1, "--no-reference", "--no-limits", "--json"])
    r["_wall_s"], r["_peak_rss_mib"], r["_major_faults"] = wall, peak, LAST_MAJOR_FAULTS
    # 1-minute load average before and after: ~2 on this 2-core machine when nothing else runs.
    r["_loadavg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return r


def roundtrip(export_dir, text, max_new_tokens=None, no_repeat=None):
    """`c3 roundtrip` of one page text (windowed as the model needs): output, char
    precision, encode and decode seconds, process peak."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        args = ["roundtrip", "--model", export_dir, "--json"]
        if max_new_tokens:
            args += ["--max-new-tokens", max_new_tokens]
        if no_repeat is not None:
            args += ["--no-repeat-ngram-size", no_repeat]
        r, wall, peak = run_c3(args + [path])
    finally:
        os.unlink(path)
    r["_wall_s"], r["_peak_rss_mib"], r["_major_faults"] = wall, peak, LAST_MAJOR_FAULTS
    return r


def roundtrip_timing(export_dir, text, steps):
    """Timing from two `c3 roundtrip` runs of the page (no n-gram ban, one window): with 1
    and with 1 + `steps` new tokens. Encoder = encode_seconds (mean of the runs), prefill
    = the 1-token run's decode_seconds (decoder prefill + first pick), decode step =
    the difference of the two decode_seconds / steps. For a fast look only: with two cold
    runs the step figure is noisy (at the release shape it scattered 0.23-0.97 s against
    0.37 s from `c3 bench`), so the reported numbers use `c3 bench`."""
    one = roundtrip(export_dir, text, max_new_tokens=1, no_repeat=0)
    more = roundtrip(export_dir, text, max_new_tokens=1 + steps, no_repeat=0)
    gen = sum(w["generated"] for w in more["windows"])
    w = more["n_windows"]  # 1 for a page within the export's window (the release shape)
    if gen != w * (1 + steps):
        raise RuntimeError(f"roundtrip timing needs {1 + steps} tokens per window, got {gen} in {w} "
                           f"windows (finish {more['finish_reason']}): a stop id came early")
    step = (more["decode_seconds"] - one["decode_seconds"]) / steps
    if step <= 0:  # two cold runs: their prefills can differ by more than the steps take
        raise RuntimeError(f"roundtrip timing: the {1 + steps}-token run decoded faster than the 1-token run; "
                           "use c3 bench (--c3-bench-n) for this configuration")
    return {"encoder_s": (one["encode_seconds"] + more["encode_seconds"]) / 2,
            "prefill_s": one["decode_seconds"],
            "step_s": step,
            "peak_mib": max(one["_peak_rss_mib"], more["_peak_rss_mib"]),
            "text_tokens": more["text_tokens"], "steps": steps, "windows": w,
            "major_faults": [one["_major_faults"], more["_major_faults"]]}


def step_at(by_pos, p):
    """Decode step seconds at cache position p, linear between the measured positions
    (and beyond the last two: extrapolated)."""
    pts = sorted((int(k), v / 1e3) for k, v in by_pos.items())
    if len(pts) == 1:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if p <= x1:
            break
    return y0 + (y1 - y0) * (p - x0) / (x1 - x0)
