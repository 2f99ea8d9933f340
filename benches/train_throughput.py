#!/usr/bin/env python3
"""Training throughput: `c3 train` beside the PyTorch/HF reference trainer, same recipe,
same threads, in one run (issue 26, BENCHMARKS.md "c3 train throughput").

Both sides train the recipe's model from scratch on the recipe's data, on the CPU with
--threads intra-op threads, and are timed per optimizer step (forward, backward, clip,
AdamW) after --warmup untimed steps; throughput is answer tokens per second (every
window's tokens plus its closing <|im_end|>: what the loss is taken over), the unit
`c3 train` reports.
  c3:        `c3 train --config R --threads T --json` with log_every = 1 and no eval or
             checkpoint inside the timed steps; its per-step `tokens_per_s` events.
  reference: tools/train-reference/c3_ref.py's own model, batches, AdamW and clipping
             (the functions its `sweep` command runs, which trained models/c3-small on
             the H200), timed here step by step (its sweep logs only every 100 steps).
The two take turns (--rounds), so a slow phase of a shared machine does not land on one
side only; the median round of each is reported. The parity test
(crates/c3-train/tests/parity.rs) shows both compute the same loss and gradients.

Command (from the repository root; a Python with torch, transformers, tokenizers):

    PY benches/train_throughput.py --recipe models/c3-small.recipe.toml --threads 2
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "train-reference"))
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import torch  # noqa: E402
import c3_ref  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def c3_round(c3, recipe_text, steps, warmup, threads):
    """Seconds per step of `c3 train` over the timed steps (and tokens per step)."""
    with tempfile.TemporaryDirectory() as d:
        text = recipe_text
        for k, v in {"total_steps": steps + warmup, "log_every": 1, "eval_every": 0,
                     "save_every": 1_000_000}.items():
            text, n = re.subn(rf"(?m)^{k} = .*$", f"{k} = {v}", text)
            assert n == 1, k
        r = Path(d) / "r.toml"
        r.write_text(text)
        p = subprocess.run([str(c3), "train", "--config", str(r), "--threads", str(threads), "--json",
                            "--out", str(Path(d) / "run")], cwd=ROOT, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"c3 train failed: {p.stderr[-2000:]}")
        ev = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        st = [e for e in ev if e.get("event") == "step" and e["step"] > warmup]
        assert len(st) == steps, (len(st), steps)
        return st


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="models/c3-small.recipe.toml")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--c3", type=Path, default=ROOT / "target" / "release" / "c3")
    a = ap.parse_args()

    recipe_text = (ROOT / a.recipe).read_text()
    r = tomllib.loads(recipe_text)
    d, o = r["data"], r["optim"]
    torch.set_num_threads(a.threads)
    dev = torch.device("cpu")
    log("reference: tokenizing the corpus (untimed) ...")
    tok, _, sp, model, prompt, start = c3_ref.build(r, dev, "sdpa")
    passages = c3_ref.windows(tok, sp, d["paths"], d["min_tokens"], d["max_tokens"], r.get("seed", 0))
    opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=o.get("weight_decay", 0.0))
    rng = torch.Generator().manual_seed(0)
    import random
    brng = random.Random(0)
    bs = o["batch_size"]

    def ref_step():
        idx = [brng.randrange(len(passages)) for _ in range(bs)]
        ids, inputs, labels = c3_ref.make_batch(passages, idx, sp, d.get("word_dropout", 0.0), rng, dev)
        loss = model.loss(ids, inputs, labels, prompt, start, sp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.get("clip", 1.0))
        opt.step()
        return labels.numel()

    rounds = {"c3": [], "reference": []}
    for i in range(a.rounds):
        st = c3_round(a.c3, recipe_text, a.steps, a.warmup, a.threads)
        # One event per step; a fixed-length recipe's step has bs * (W + 1) answer tokens.
        tokens = bs * (d["max_tokens"] + 1)
        tok_total = tokens * len(st)
        secs = sum(tokens / e["tokens_per_s"] for e in st)
        rounds["c3"].append(tok_total / secs)
        log(f"round {i}: c3 train {rounds['c3'][-1]:.0f} answer tokens/s")
        for _ in range(a.warmup):
            ref_step()
        t0, toks = time.perf_counter(), 0
        for _ in range(a.steps):
            toks += ref_step()
        rounds["reference"].append(toks / (time.perf_counter() - t0))
        log(f"round {i}: reference {rounds['reference'][-1]:.0f} answer tokens/s")

    c3_tps, ref_tps = statistics.median(rounds["c3"]), statistics.median(rounds["reference"])
    result = {
        "recipe": a.recipe, "threads": a.threads, "steps": a.steps, "warmup": a.warmup, "rounds": a.rounds,
        "batch_size": bs, "window": d["max_tokens"],
        "c3_train_answer_tokens_per_s": c3_tps, "reference_answer_tokens_per_s": ref_tps,
        "c3_over_reference": c3_tps / ref_tps, "per_round": rounds,
        "torch": torch.__version__, "machine": {"cpu": platform.processor(), "cpus": os.cpu_count()},
    }
    print(f"{'':28} {'answer tokens/s':>16} {'s/step':>8}")
    for name, v in (("c3 train", c3_tps), ("reference (PyTorch + HF)", ref_tps)):
        print(f"{name:28} {v:16.0f} {bs * (d['max_tokens'] + 1) / v:8.2f}")
    print(f"c3 train / reference = {c3_tps / ref_tps:.2f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
