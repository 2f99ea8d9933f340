#!/usr/bin/env python3
"""The GPU check: every step of docs/gpu.md in one command, report.json + report.md.

Run by scripts/gpu-check.sh (see there for usage). Standard library only: the GPU hosts
have Python but nothing of ours installed, and the rehearsal runs in the test suite.

Each step runs the project's own binaries (c3, c3-serve, c3-loadgen) as a user would and
records what they print; a step that fails is recorded with its error and the next one
runs. Steps run only when the inputs they need are here ("stages"):
  stage1  the c3 binary (tch against the host's libtorch): c3 train on the device for
          200 steps of models/c3-small.recipe.toml, the tch cascade's demo-page round trip
          on the device against the CPU's, the HF transformers peer (needs torch there)
  stage2  ONNX Runtime's CUDA provider (ORT_DYLIB_PATH with the provider beside it):
          greedy parity of the golden fixture's exports with the HF goldens and the CPU,
          the default models' demo page, speed at the Qwen2.5-0.5B and released C3
          shapes (c3 bench), and c3-serve under c3-loadgen at concurrency 1/16/64.
--rehearse runs the same steps on the CPU with small shapes and few steps, so that
neither this script nor the binaries' flags can rot while no GPU is at hand.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sh(args, timeout, **kw):
    """Runs a command; returns stdout, raising with the last stderr line on failure."""
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise RuntimeError(f"{Path(str(args[0])).name} {' '.join(str(a) for a in args[1:4])} ... exit {r.returncode}: {last}")
    return r.stdout


def last_json(text):
    """`text` as one JSON object, or else its last line that is one."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON object in the output")


def safetensors_ints(path):
    """name -> list of ints, for the integer tensors of a safetensors file (no numpy)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    fmt = {"I64": "q", "I32": "i", "U32": "I"}
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] not in fmt:
            continue
        a, b = t["data_offsets"]
        f = fmt[t["dtype"]]
        out[name] = list(struct.unpack(f"<{(b - a) // struct.calcsize(f)}{f}", body[a:b]))
    return out


class Check:
    def __init__(self, args):
        self.a = args
        self.out = Path(args.out).resolve()
        self.work = self.out / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.deadline = time.time() + args.budget
        self.rehearse = args.rehearse
        self.provider = "cpu" if args.rehearse else "cuda"
        self.device = "cpu" if args.rehearse else "cuda"
        self.c3 = self.binary("c3", args.c3)
        self.serve_bin = self.binary("c3-serve", args.c3_serve)
        self.loadgen_bin = self.binary("c3-loadgen", args.c3_loadgen)
        self.report = {"rehearsal": self.rehearse, "provider": self.provider, "steps": {}}

    def binary(self, name, given):
        for p in [given, shutil.which(name), ROOT / "target" / "release" / name]:
            if p and Path(p).is_file():
                return Path(p).resolve()
        return None

    def stages(self):
        s = []
        if self.c3:
            s.append("stage1")
        ort = os.environ.get("ORT_DYLIB_PATH", "")
        gpu_ort = ort and (Path(ort).parent / "libonnxruntime_providers_cuda.so").is_file()
        if self.c3 and (gpu_ort or self.rehearse):
            s.append("stage2")
        return s

    def step(self, name, stage, fn):
        if stage not in self.stages():
            self.report["steps"][name] = {"skipped": f"{stage} not here (docs/gpu.md)"}
            return
        left = self.deadline - time.time()
        if left < 20:
            self.report["steps"][name] = {"skipped": f"out of time ({self.a.budget} s budget)"}
            return
        t0 = time.time()
        print(f"[gpu-check] {name} ...", file=sys.stderr, flush=True)
        try:
            r = fn(left)
            r["ok"] = r.get("ok", True)
        except Exception as e:  # recorded, and the next step runs
            r = {"ok": False, "error": str(e)}
        r["seconds"] = round(time.time() - t0, 1)
        self.report["steps"][name] = r
        print(f"[gpu-check] {name}: {'ok' if r['ok'] else 'FAILED ' + r.get('error', '')} ({r['seconds']} s)", file=sys.stderr, flush=True)
        self.save()

    # ------------------------------------------------------------------ stage 1
    def environment(self, _left):
        r = {"stages": self.stages(), "c3": str(self.c3)}
        if shutil.which("nvidia-smi"):
            r["gpus"] = sh(["nvidia-smi", "-L"], 30).strip().splitlines()
        r["uname"] = os.uname().release
        return r

    def corpus(self):
        """The training corpus: data/corpus's three sources, or (rehearsal, CI) the
        repository's own sample texts."""
        full = [ROOT / "data/corpus" / s for s in ("sotu", "python", "perl")]
        if all(p.is_dir() for p in full) and not self.rehearse:
            return full, 256
        small = self.work / "corpus"
        small.mkdir(exist_ok=True)
        for f in ("demo-page.txt", "sample.txt"):
            shutil.copy(ROOT / "models" / f, small / f)
        return [small], 2

    def recipe(self, base, steps, name):
        paths, held = self.corpus()
        text = (ROOT / base).read_text()
        sets = {
            "name": json.dumps(name),
            "paths": json.dumps([str(p) for p in paths]),
            "held_out": str(held),
            "total_steps": str(steps),
            "eval_every": str(steps + 1),
            "save_every": str(steps),
            "log_every": "1" if self.rehearse else "10",
        }
        for k, v in sets.items():
            text, n = re.subn(rf"(?m)^{k} = .*$", f"{k} = {v}", text)
            if n != 1:
                raise RuntimeError(f"{base}: key `{k}` found {n} times")
        path = self.work / f"{name}.recipe.toml"
        path.write_text(text)
        return path

    def train(self, left):
        base, steps = ("models/c3-tiny.recipe.toml", 3) if self.rehearse else ("models/c3-small.recipe.toml", 200)
        recipe = self.recipe(base, steps, "gpu-check-train")
        run = self.work / "train"
        shutil.rmtree(run, ignore_errors=True)
        t0 = time.time()
        out = sh([self.c3, "train", "--config", recipe, "--device", self.device, "--out", run, "--json"],
                 left, cwd=ROOT)
        wall = time.time() - t0
        ev = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        st = [e for e in ev if e.get("event") == "step"]
        if not st or st[-1]["step"] != steps:
            raise RuntimeError(f"training ended at step {st[-1]['step'] if st else 0} of {steps}")
        # Steps/s from the trainer's own per-window token rates (so the corpus's
        # tokenization at start and the final evaluation are not counted); every step of
        # a fixed-window recipe has batch x (window + 1) answer tokens.
        toml = recipe.read_text()
        per_step = int(re.search(r"(?m)^batch_size = (\d+)", toml).group(1)) * (
            int(re.search(r"(?m)^max_tokens = (\d+)", toml).group(1)) + 1)
        tps = sorted(e["tokens_per_s"] for e in st)
        median = tps[len(tps) // 2]
        return {
            "recipe": base, "device": self.device, "steps": steps, "wall_s": wall,
            "answer_tokens_per_s_median": median, "steps_per_s": median / per_step,
            "loss_curve": [[e["step"], e["loss"]] for e in st],
        }

    def tch_roundtrip(self, left):
        page = ROOT / "models/demo-page.txt"
        runs = {}
        for dev in dict.fromkeys([self.device, "cpu"]):
            o = sh([self.c3, "roundtrip", "--checkpoint", ROOT / "models/c3-small", "--device", dev, page, "--json"],
                   left, cwd=ROOT)
            runs[dev] = json.loads(o)
        d, c = runs[self.device], runs["cpu"]
        return {"ok": d["text"] == c["text"], "device": self.device, "text_equal_to_cpu": d["text"] == c["text"],
                "char_precision": d["char_precision"], "decode_tokens_per_second": d["decode_tokens_per_second"],
                "encode_seconds": d["encode_seconds"], "decode_seconds": d["decode_seconds"]}

    def hf_peer(self, left):
        # The HF transformers peer runs the C3 reference cascade on the same checkpoint
        # (benches/hf_ttft.py): it needs torch and transformers in this Python.
        if self.rehearse:
            # hf_ttft.py reads Qwen's tokenizer; the tiny shape has a byte-level one, and
            # the 0.5B shape is minutes on a CPU: run it by hand (BENCHMARKS.md).
            return {"skipped": "rehearsal: needs the Qwen-vocabulary 0.5B shape (benches/hf_ttft.py by hand)"}
        py = self.a.python or sys.executable
        probe = subprocess.run([py, "-c", "import torch, transformers, safetensors, regex"], capture_output=True, text=True)
        if probe.returncode != 0:
            return {"skipped": f"{py} lacks torch/transformers/safetensors/regex"}
        ck = self.shape_checkpoint("c3-0.5b-shape")
        ex = self.export(ck, "fp16", [])
        o = sh([py, ROOT / "benches/hf_ttft.py", "--checkpoint", ck, "--export", ex,
                "--device", self.device, "--provider", self.provider, "--c3", self.c3,
                "--doc-tokens", "1000", "--runs", "5", "--c3-passes", "1", "--decode-tokens", "32"], left, cwd=ROOT)
        return last_json(o)

    # ------------------------------------------------------------------ stage 2
    def export(self, ckpt, dtype, extra):
        name = f"{Path(ckpt).name}-{dtype}{''.join(x.strip('-').replace('-', '') for x in extra)}"
        out = self.work / "exports" / name
        if not (out / "c3-export.json").is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            sh([self.c3, "export", ckpt, "--out", out, "--dtype", dtype, "--force", *extra], 1800, cwd=ROOT)
        return out

    def parity(self, left):
        g = json.loads((ROOT / "tests/fixtures/golden/tiny_golden.json").read_text())
        ids = safetensors_ints(ROOT / "tests/fixtures/golden/tiny_golden.safetensors")
        tiny = ROOT / "tests/fixtures/tiny"
        # fp32 shared-buffer decoders cannot run on CUDA (GroupQueryAttention is fp16/bf16
        # there): fp32 is checked with the concat cache, the half types with both.
        variants = {
            "fp32-concat": ("fp32", ["--kv-cache", "concat"]),
            "fp16-shared_buffer": ("fp16", []),
            "fp16-concat": ("fp16", ["--kv-cache", "concat"]),
            "int4-fp16": ("fp16", ["--quantize", "int4"]),
        }
        res, ok = {}, True
        for vname, (dtype, extra) in variants.items():
            ex = self.export(tiny, dtype, extra)
            rows = []
            for doc, d in g["docs"].items():
                src = self.work / f"{doc}.txt"
                src.write_text(d["text"])
                for run in d["runs"]:
                    n = int(run.removeprefix("ngram"))
                    got, end = {}, {}
                    for prov in dict.fromkeys([self.provider, "cpu"]):
                        o = json.loads(sh([self.c3, "roundtrip", "--model", ex, "--provider", prov, src, "--json",
                                           "--max-new-tokens", g["max_new_tokens"], "--no-repeat-ngram-size", n],
                                          left, cwd=ROOT))
                        got[prov], end[prov] = o["output_ids"], o["windows"][0]["end"]
                    want = ids.get(f"{doc}.greedy_{run}") or []
                    mine = got[self.provider]
                    # The CLI caps a window's output at its length + 1/4 + 8 tokens (a
                    # short document stops there, `end` = limit): then the goldens' first
                    # tokens are compared.
                    same = mine == want or (end[self.provider] == "limit" and len(mine) < len(want)
                                            and mine == want[: len(mine)])
                    row = {"doc": doc, "run": run, "equal_to_cpu": mine == got["cpu"],
                           "equal_to_hf_golden": bool(want) and same, "tokens_compared": len(mine)}
                    rows.append(row)
            must = all(r["equal_to_hf_golden"] for r in rows) if dtype == "fp32" else all(r["equal_to_cpu"] for r in rows)
            ok &= must
            res[vname] = {"rows": rows, "required": "HF goldens" if dtype == "fp32" else "same as the CPU", "ok": must}
        return {"ok": ok, "variants": res,
                "logits": "not compared here: the CLI prints tokens; logits are compared by tests/golden.rs on the CPU"}

    def demo_page(self, left):
        page = ROOT / "models/demo-page.txt"
        res, ok = {}, True
        for model in ("c3-tiny", "c3-small"):
            ex = self.export(ROOT / "models" / model, "fp16" if not self.rehearse else "fp32", [])
            runs = {}
            for prov in dict.fromkeys([self.provider, "cpu"]):
                runs[prov] = json.loads(sh([self.c3, "roundtrip", "--model", ex, "--provider", prov, page, "--json"], left, cwd=ROOT))
            eq = runs[self.provider]["text"] == runs["cpu"]["text"]
            ok &= eq
            res[model] = {"text_equal_to_cpu": eq, "char_precision": runs[self.provider]["char_precision"],
                          "decode_tokens_per_second": runs[self.provider]["decode_tokens_per_second"]}
        return {"ok": ok, "models": res}

    def shape_checkpoint(self, preset):
        out = self.work / "ckpt" / preset
        if not (out / "config.json").is_file():
            sh([self.c3, "init", "--preset", preset, out, "--force"], 1800, cwd=ROOT)
        return out

    def speed(self, left):
        shapes = ["tiny"] if self.rehearse else ["c3-0.5b-shape", "c3-release-shape"]
        res = {}
        for preset in shapes:
            if self.deadline - time.time() < 60:
                res[preset] = {"skipped": "out of time"}
                continue
            ck = self.shape_checkpoint(preset)
            ex = self.export(ck, "fp16" if not self.rehearse else "fp32", [])
            o = sh([self.c3, "bench", "--model", ex, "--provider", self.provider, "--no-reference", "--json",
                    "--doc-tokens", "64" if self.rehearse else "1000", "--docs", "4" if self.rehearse else "16",
                    "--new-tokens", "8" if self.rehearse else "64", "--repeat", "1" if self.rehearse else "3"],
                   self.deadline - time.time(), cwd=ROOT)
            b = last_json(o)
            rt = b["runtime"]
            res[preset] = {k: rt.get(k) for k in (
                "docs_per_second", "time_to_first_token_ms", "decode_tokens_per_second_b1",
                "decode_tokens_per_second_b8", "load_s", "peak_rss_mib", "limits")}
            res[preset]["n_latents"] = b.get("n_latents")
        return {"shapes": res, "batch_64": "not measured: c3 bench times batch 1 and 8"}

    def serve(self, left):
        preset = "tiny" if self.rehearse else "c3-0.5b-shape"
        ex = self.export(self.shape_checkpoint(preset), "fp16" if not self.rehearse else "fp32", [])
        log = open(self.work / "serve.log", "w")
        p = subprocess.Popen([str(self.serve_bin), str(ex), "--addr", "127.0.0.1:0", "--provider", self.provider,
                              "--max-batch", "64"], stdout=log, stderr=subprocess.STDOUT)
        try:
            url = None
            for _ in range(600):
                m = re.search(r"http://127\.0\.0\.1:\d+", (self.work / "serve.log").read_text())
                if m:
                    url = m.group(0)
                    break
                if p.poll() is not None:
                    raise RuntimeError("c3-serve exited: " + (self.work / "serve.log").read_text().strip()[-300:])
                time.sleep(0.1)
            if not url:
                raise RuntimeError("c3-serve did not start within 60 s")
            conc = "1,4" if self.rehearse else "1,16,64"
            o = sh([self.loadgen_bin, "--url", url, "--documents", ROOT / "models/demo-page.txt", "--wait-ready", "60",
                    "--concurrency", conc, "--requests", "8" if self.rehearse else "128", "--json"],
                   self.deadline - time.time(), cwd=ROOT)
            lg = last_json(o)
            levels = {str(l["concurrency"]): {k: l[k] for k in ("ok", "errors", "tokens_per_second", "requests_per_second")}
                      | {"ttft_p50_s": l["ttft_seconds"]["p50"], "latency_p95_s": l["latency_seconds"]["p95"]}
                      for l in lg["levels"]}
            ok = all(l["errors"] == 0 and l["ok"] == l["requests"] for l in lg["levels"])
            return {"ok": ok, "export": preset, "levels": levels, "loadgen": lg}
        finally:
            p.terminate()
            p.wait(timeout=30)

    # ------------------------------------------------------------------ report
    def save(self):
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1) + "\n")
        lines = [f"# GPU check ({'rehearsal on the CPU' if self.rehearse else 'provider ' + self.provider})", "",
                 "| step | ok | seconds | summary |", "|---|---|---|---|"]
        for name, r in self.report["steps"].items():
            if "skipped" in r:
                lines.append(f"| {name} | skipped | | {r['skipped']} |")
                continue
            summ = r.get("error") or ", ".join(f"{k}={v}" for k, v in r.items()
                                              if isinstance(v, (int, float, str)) and k not in ("ok", "seconds"))[:200]
            lines.append(f"| {name} | {'yes' if r['ok'] else 'NO'} | {r['seconds']} | {summ} |")
        (self.out / "report.md").write_text("\n".join(lines) + "\n")

    def run(self):
        steps = [
            ("environment", "stage1", self.environment),
            ("train", "stage1", self.train),
            ("tch_roundtrip", "stage1", self.tch_roundtrip),
            ("parity", "stage2", self.parity),
            ("demo_page", "stage2", self.demo_page),
            ("hf_peer", "stage2", self.hf_peer),
            ("serve", "stage2", self.serve),
            ("speed", "stage2", self.speed),
        ]
        only = set(self.a.only.split(",")) if self.a.only else None
        for name, stage, fn in steps:
            if only is None or name in only:
                self.step(name, stage, fn)
        self.save()
        failed = [n for n, r in self.report["steps"].items() if r.get("ok") is False]
        print(f"[gpu-check] report: {self.out / 'report.json'}" + (f"; FAILED: {', '.join(failed)}" if failed else ""),
              file=sys.stderr)
        return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="folder for report.json, report.md and the work files")
    ap.add_argument("--rehearse", action="store_true", help="the CPU provider and small shapes (test suite)")
    ap.add_argument("--budget", type=int, default=450, help="seconds for all steps (a step is skipped when under 20 are left)")
    ap.add_argument("--only", help="comma-separated step names")
    ap.add_argument("--python", help="a Python with torch and transformers for the HF peer (default: this one)")
    ap.add_argument("--c3")
    ap.add_argument("--c3-serve")
    ap.add_argument("--c3-loadgen")
    sys.exit(Check(ap.parse_args()).run())


if __name__ == "__main__":
    main()
