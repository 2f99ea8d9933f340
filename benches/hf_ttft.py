#!/usr/bin/env python3
"""Time to first token (TTFT) for one ~1,000-token document: HF transformers eager vs the c3 runtime.

What it measures, in ONE run on the same machine (issue 15 target: c3 >= 1.3x faster than
HF transformers eager on the same checkpoint, the peer the C3 reference uses):

  (a) HF transformers, eager attention, fp32, CPU, torch threads = --threads (2), under
      torch.inference_mode(), running the C3 cascade straight from the checkpoint exactly as
      tests/golden/gen_golden.py does (load_encoder / load_decoder / encoder_inputs /
      encode_one / decoder_prompt / prompt_embeds / greedy, rewritten here to take a
      checkpoint path instead of the tiny fixture's constants):
        encoder forward over  doc ids ++ <img> ++ N query slots (rows replaced by model.Q),
        last hidden state (after the final norm) at the N slots -> model.mm_projector,
        decoder prompt embeddings with the projected latents in the N <imgpad> slots,
        decoder prefill (use_cache=True, as the reference's greedy does), argmax of the last
        position = first token.
      Timed from "token ids in hand" to "first token id in hand"; median of --runs runs after
      one untimed warm-up. HF's forward computes logits for EVERY prompt position (that is the
      eager peer's behaviour and the headline HF figure); a second, labelled figure passes
      logits_to_keep=1. The two variants take turns run by run, so a slow phase of a shared
      machine does not land on only one of them.
  (b) the c3 runtime (ONNX Runtime, CPU):  c3 bench --model EXPORT --doc-tokens N --docs 1
      --new-tokens 2 --repeat RUNS --no-reference --no-limits --json, reading
      runtime.time_to_first_token_ms (median of compress one document + generate one token,
      model already loaded, after one warm-up). ONNX Runtime uses its default intra-op threads.
      c3 bench runs once before and once after the HF timing (--c3-passes 2, the default); the
      headline c3 figure is the SLOWER pass, so a busy phase of a shared machine that hits only
      the HF timing cannot flatter c3 by much. The 1-minute load average of each phase is printed.

Same document on both sides: c3 bench cycles the ids of models/sample.txt (compiled into the
binary) into a document of --doc-tokens ids; this script tokenizes the same file with the
checkpoint's qwen.tiktoken (NFC + ordinary BPE, spec section 4, implemented here with `regex`;
cross-checked against `tiktoken` when that is installed) and cycles it the same way, so the HF
side times exactly the ids c3 bench times. Lengths above the export's max_text_tokens are refused.

Correctness (so the comparison is honest): the HF first token must equal the c3 runtime's
first token for the same document. That cycled document does not survive decode -> re-encode
(".disincentive" merges differently across the cycle seam), so the check uses a text that does:
copies of the sample joined by newlines, truncated to the same token count and verified to
re-encode to exactly those ids. It is given to `c3 roundtrip --model EXPORT --max-new-tokens 1
--no-repeat-ngram-size 0 --json` (one window: the count is checked against the export's window)
and to the HF cascade; `first_token_agrees` compares the two (plus the HF top-1/top-2 logit gap,
since the 0.5B-shape checkpoint has random weights and near-ties are possible).

Output: a small table, then one line of JSON (the last line of stdout).

Command (from the repository root):

    /work/pyref/bin/python benches/hf_ttft.py --checkpoint target/small-ck --export target/small-export \
        [--doc-tokens 1000] [--runs 5] [--c3 target/release/c3] [--threads 2]
"""

import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path


def _wants_cuda(argv):
    """Whether --device names a GPU (read before torch is imported, see below)."""
    for i, x in enumerate(argv):
        if x.startswith("--device=") and x.split("=", 1)[1].startswith("cuda"):
            return True
        if x == "--device" and i + 1 < len(argv) and argv[i + 1].startswith("cuda"):
            return True
    return False


# CPU only, like the golden reference, unless the GPU check asks for CUDA
# (scripts/gpu/check.py): hiding the GPUs must happen before torch is imported.
if not _wants_cuda(sys.argv):
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import regex
import torch
import transformers
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "models" / "sample.txt"  # what `c3 bench` compiles in (include_str!)

# Spec section 4 (same string as tests/golden/gen_golden.py QWEN_PAT).
QWEN_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
N_QWEN_RANKS = 151643
ENDOFTEXT, IM_START, IM_END = 151643, 151644, 151645
SYSTEM = "system\nYou should follow the instructions carefully and explain your answers in detail."
QWEN2_FIELDS = [
    "hidden_act", "hidden_size", "intermediate_size", "max_position_embeddings",
    "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "rms_norm_eps",
    "rope_theta", "tie_word_embeddings", "vocab_size", "bos_token_id", "eos_token_id",
]
EXTRAS = ("model.Q.weight", "model.mm_projector.weight", "model.mm_projector.bias")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Tokenizer: qwen.tiktoken, NFC, ordinary (no specials from text) byte-pair encoding
# ---------------------------------------------------------------------------
class QwenBPE:
    """tiktoken's algorithm (regex pre-split, then merge the lowest-ranked adjacent pair)."""

    def __init__(self, path):
        self.ranks = {}
        for line in Path(path).read_text().splitlines():
            if line:
                tok, rank = line.split()
                self.ranks[base64.b64decode(tok)] = int(rank)
        assert len(self.ranks) == N_QWEN_RANKS and sorted(self.ranks.values()) == list(range(N_QWEN_RANKS))
        self.bytes_of = {r: b for b, r in self.ranks.items()}
        self.rx = regex.compile(QWEN_PAT)
        self.path = Path(path)

    def _bpe(self, piece):
        if piece in self.ranks:
            return [self.ranks[piece]]
        parts = [piece[i : i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        return [self.ranks[p] for p in parts]

    def encode(self, text):
        text = unicodedata.normalize("NFC", text)
        out = []
        for m in self.rx.finditer(text):
            out += self._bpe(m.group().encode("utf-8"))
        return out

    def decode(self, ids):
        return b"".join(self.bytes_of[i] for i in ids).decode("utf-8")


def cross_check_tiktoken(tok, texts):
    """Same ids as the `tiktoken` package, when it is installed (else None)."""
    try:
        import tiktoken
    except ImportError:
        return None
    enc = tiktoken.Encoding(name="qwen", pat_str=QWEN_PAT, mergeable_ranks=tok.ranks, special_tokens={})
    return all(enc.encode_ordinary(unicodedata.normalize("NFC", t)) == tok.encode(t) for t in texts)


# ---------------------------------------------------------------------------
# Reference cascade: gen_golden.py's functions, taking a checkpoint instead of the tiny fixture
# ---------------------------------------------------------------------------
def load_state_dict_files(folder):
    """model.safetensors, or the shards listed in model.safetensors.index.json."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        sd = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            sd.update(load_file(str(folder / shard)))
        return sd
    return load_file(str(folder / "model.safetensors"))


def load_encoder(ck):
    folder = Path(ck) / "llm1"
    cfg_dict = json.loads((folder / "config.json").read_text())
    model, info = Qwen2ForCausalLM.from_pretrained(
        str(folder), dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    # transformers 5 must have read the legacy top-level rope_theta rather than defaulting it.
    assert model.config.rope_parameters["rope_theta"] == cfg_dict["rope_theta"], model.config.rope_parameters
    on_disk = load_state_dict_files(folder)
    for k, v in model.state_dict().items():
        if k not in on_disk:  # a tied lm_head is not stored
            assert k == "lm_head.weight" and cfg_dict.get("tie_word_embeddings"), k
            assert torch.equal(v, model.model.embed_tokens.weight), k
            continue
        assert torch.equal(v, on_disk[k].float()), k
    del on_disk
    return model.eval()


def load_decoder(ck):
    cfg_dict = json.loads((Path(ck) / "config.json").read_text())
    # The root config says model_type "C3"; only its Qwen2 fields describe the decoder.
    cfg = Qwen2Config(**{k: cfg_dict[k] for k in QWEN2_FIELDS if k in cfg_dict}, attn_implementation="eager")
    assert cfg.rope_parameters["rope_theta"] == cfg_dict["rope_theta"], cfg.rope_parameters
    model = Qwen2ForCausalLM(cfg).float()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    sd = load_state_dict_files(ck)
    extras = {k: sd.pop(k).float() for k in EXTRAS}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if cfg_dict.get("tie_word_embeddings", False):
        assert list(missing) == ["lm_head.weight"] and not unexpected, (missing, unexpected)
        assert torch.equal(model.lm_head.weight, sd["model.embed_tokens.weight"].float())
    else:
        assert not missing and not unexpected, (missing, unexpected)
    del sd
    return model.eval(), extras, cfg_dict


def encoder_inputs(text_ids, img, imgpad, n):
    # The trailing </img> is causal-invisible to the query slots, so it is omitted.
    ids = text_ids + [img] + [imgpad] * n
    return ids, len(text_ids) + 1


def encode_one(enc, Q, text_ids, img, imgpad, n):
    ids, q0 = encoder_inputs(text_ids, img, imgpad, n)
    dev = Q.device
    emb = enc.model.embed_tokens(torch.tensor([ids], device=dev)).clone()
    emb[0, q0 : q0 + n] = Q
    pos = torch.arange(len(ids), device=dev)[None]
    h = enc.model(inputs_embeds=emb, position_ids=pos, use_cache=False).last_hidden_state
    return h[0, q0 : q0 + n]


def decoder_prompt(tok, img, img_end, imgpad, n):
    ids = [IM_START] + tok.encode(SYSTEM) + [IM_END]
    ids += [IM_START] + tok.encode("user\n") + [img] + [imgpad] * n + [img_end]
    ids += tok.encode("\nRepeat the text: ") + [IM_END] + [IM_START] + tok.encode("assistant\n")
    latent_start = ids.index(imgpad)
    assert ids[latent_start : latent_start + n] == [imgpad] * n
    return ids, latent_start


def prompt_embeds(dec, prompt_ids, latent_start, projected, n):
    emb = dec.model.embed_tokens(torch.tensor([prompt_ids], device=projected.device)).clone()
    emb[0, latent_start : latent_start + n] = projected
    return emb


class Cascade:
    def __init__(self, ck, tok, device="cpu"):
        t0 = time.perf_counter()
        self.device = torch.device(device)
        self.enc = load_encoder(ck).to(self.device)
        self.dec, extras, cfg = load_decoder(ck)
        self.dec = self.dec.to(self.device)
        self.Q, self.W, self.b = (extras[k].to(self.device) for k in EXTRAS)
        self.n = cfg["latent_token_len"]
        self.img, self.img_end, self.imgpad = cfg["im_start_token"], cfg["im_end_token"], cfg["im_patch_token"]
        assert self.Q.shape[0] == self.n, self.Q.shape
        self.prompt_ids, self.latent_start = decoder_prompt(tok, self.img, self.img_end, self.imgpad, self.n)
        self.load_seconds = time.perf_counter() - t0

    def first_token(self, text_ids, logits_to_keep=None):
        """Encoder + projection + decoder prefill + argmax, as greedy()'s first step does."""
        lat = encode_one(self.enc, self.Q, text_ids, self.img, self.imgpad, self.n)
        proj = lat @ self.W.T + self.b
        emb = prompt_embeds(self.dec, self.prompt_ids, self.latent_start, proj, self.n)
        kw = {} if logits_to_keep is None else {"logits_to_keep": logits_to_keep}
        out = self.dec(inputs_embeds=emb, position_ids=torch.arange(len(self.prompt_ids), device=self.device)[None],
                       use_cache=True, **kw)
        last = out.logits[0, -1]
        return int(last.argmax()), last

    def decode_seconds_per_step(self, text_ids, batch, steps):
        """Greedy decode steps of `batch` copies of one document after its prefill (the
        KV cache of HF's DynamicCache, logits of the new position only): seconds per
        step, timed from the first step to the last token in hand."""
        lat = encode_one(self.enc, self.Q, text_ids, self.img, self.imgpad, self.n)
        emb = prompt_embeds(self.dec, self.prompt_ids, self.latent_start, lat @ self.W.T + self.b, self.n)
        emb = emb.expand(batch, -1, -1).contiguous()
        plen = len(self.prompt_ids)
        pos = torch.arange(plen, device=self.device)[None].expand(batch, -1)
        out = self.dec(inputs_embeds=emb, position_ids=pos, use_cache=True, logits_to_keep=1)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        past = out.past_key_values
        sync(self.device)
        t0 = time.perf_counter()
        for i in range(steps):
            p = torch.full((batch, 1), plen + i, device=self.device)
            out = self.dec(input_ids=nxt, position_ids=p, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        int(nxt[0, 0])  # the last token in hand (waits for the device)
        return (time.perf_counter() - t0) / steps


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------
# c3 side
# ---------------------------------------------------------------------------
def run_json(cmd):
    log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-4000:]}")
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"no JSON from {' '.join(cmd)}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return json.loads(lines[-1])


def machine():
    name = None
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": name or platform.processor(), "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)), "os": platform.platform()}


def median_ms(xs):
    return statistics.median(xs) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, type=Path, help="C3 checkpoint folder (release layout)")
    ap.add_argument("--export", required=True, type=Path, help="its export folder (made by `c3 export`)")
    ap.add_argument("--doc-tokens", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per figure (median), after 1 warm-up")
    ap.add_argument("--c3", type=Path, default=ROOT / "target" / "release" / "c3")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--c3-passes", type=int, default=2, choices=(1, 2),
                    help="run c3 bench before and after the HF timing (2) or only before (1)")
    ap.add_argument("--no-logits-to-keep", action="store_true", help="skip the logits_to_keep=1 HF figure")
    ap.add_argument("--device", default="cpu", help="torch device for HF (cpu, cuda, cuda:N)")
    ap.add_argument("--provider", default="cpu", help="c3's execution provider (cpu, cuda)")
    ap.add_argument("--decode-tokens", type=int, default=0,
                    help="also time this many decode steps at batch 1 and 8 on both sides (0: TTFT only)")
    a = ap.parse_args()
    if a.runs < 5:
        log(f"note: --runs {a.runs} < 5")

    torch.set_num_threads(a.threads)
    manifest = json.loads((a.export / "c3-export.json").read_text())
    max_text = manifest["max_text_tokens"]
    n_tok = a.doc_tokens
    if not 0 < n_tok <= max_text:
        sys.exit(f"--doc-tokens {n_tok}: must be in 1..={max_text} (the export's max_text_tokens)")
    window = manifest.get("window_tokens") or max_text
    if n_tok > window:
        sys.exit(f"--doc-tokens {n_tok} is longer than one encoder window ({window}): the correctness check needs one window")
    src = manifest.get("source", {}).get("checkpoint")
    if src and src != a.checkpoint.resolve().name:
        log(f"warning: the export says it was made from '{src}', not '{a.checkpoint.resolve().name}'")

    tok_path = a.checkpoint / "qwen.tiktoken"
    if not tok_path.exists():
        tok_path = a.export / manifest["tokenizer"]["file"]
    tok = QwenBPE(tok_path)

    # The document c3 bench times: models/sample.txt's ids, cycled (documents(), doc 0).
    sample = SAMPLE.read_text(encoding="utf-8")
    sample_ids = tok.encode(sample)
    bench_ids = [sample_ids[j % len(sample_ids)] for j in range(n_tok)]

    # The correctness text: survives decode -> re-encode, same token count if at all possible.
    reps = n_tok // max(1, len(sample_ids)) + 2
    check_ids = tok.encode("\n".join([sample.strip()] * reps))[:n_tok]
    while check_ids and tok.encode(tok.decode(check_ids)) != check_ids:
        check_ids = check_ids[:-1]
    check_text = tok.decode(check_ids)
    tk_ok = cross_check_tiktoken(tok, [sample, check_text, SYSTEM])
    if tk_ok is False:
        sys.exit("this script's BPE disagrees with the tiktoken package")

    # ---- (b) c3 runtime: bench (before and after the HF timing), roundtrip for the first token
    bench_cmd = [str(a.c3), "bench", "--model", str(a.export), "--doc-tokens", str(n_tok), "--docs", "1",
                 "--new-tokens", str(max(4, a.decode_tokens)), "--repeat", str(a.runs), "--no-reference",
                 "--no-limits", "--provider", a.provider, "--json"]

    def c3_bench():
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        bench = run_json(bench_cmd)
        if bench["doc_tokens"] != n_tok:
            sys.exit(f"c3 bench used {bench['doc_tokens']} tokens, not {n_tok}")
        ms = bench["runtime"]["time_to_first_token_ms"]
        log(f"  c3 bench: time_to_first_token_ms {ms:.1f} ({time.perf_counter() - t0:.0f} s, load {load:.2f})")
        return ms, bench, load

    c3_passes = [c3_bench()]
    bench = c3_passes[0][1]

    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write(check_text)
        check_file = f.name
    try:
        rt = run_json([str(a.c3), "roundtrip", "--model", str(a.export), "--provider", a.provider, "--max-new-tokens", "1",
                       "--no-repeat-ngram-size", "0", "--json", check_file])
    finally:
        os.unlink(check_file)
    if rt["text_tokens"] != len(check_ids) or rt["n_windows"] != 1:
        sys.exit(f"c3 roundtrip saw {rt['text_tokens']} tokens in {rt['n_windows']} windows, "
                 f"expected {len(check_ids)} in 1: the tokenizers disagree")
    rt_pad = rt["windows"][0].get("pad", 0)
    c3_first = rt["output_ids"][0] if rt["output_ids"] else None  # None: stopped on a stop id

    # ---- (a) HF transformers eager ---------------------------------------------------------
    log("loading the checkpoint in HF transformers ...")
    hf = Cascade(a.checkpoint, tok, a.device)
    if hf.prompt_ids != manifest["prompt"]["ids"] or hf.latent_start != manifest["prompt"]["latent_start"]:
        sys.exit("the HF decoder prompt differs from the export manifest's prompt ids")
    log(f"loaded in {hf.load_seconds:.0f} s; timing {n_tok}-token document, {a.runs} runs + 1 warm-up")

    variants = [("eager", None)] + ([] if a.no_logits_to_keep else [("logits_to_keep_1", 1)])
    times = {name: [] for name, _ in variants}
    firsts = {name: set() for name, _ in variants}
    hf_loads = []
    with torch.inference_mode():
        for i in range(a.runs + 1):
            hf_loads.append(os.getloadavg()[0])  # round 0 = warm-up; the variants take turns
            for name, ltk in variants:
                s = time.perf_counter()
                ft, _ = hf.first_token(bench_ids, ltk)  # int(): waits for the device
                dt = time.perf_counter() - s
                firsts[name].add(ft)
                if i > 0:
                    times[name].append(dt)
                log(f"  HF round {i}{' (warm-up)' if i == 0 else ''}: {name} {dt * 1e3:.0f} ms")
        hf_first, last = hf.first_token(check_ids)
        hf_decode = {}
        for b in ([1, 8] if a.decode_tokens else []):
            hf.decode_seconds_per_step(bench_ids, b, 2)  # warm-up
            step = statistics.median(hf.decode_seconds_per_step(bench_ids, b, a.decode_tokens) for _ in range(3))
            hf_decode[f"b{b}"] = b / step
            log(f"  HF decode batch {b}: {b / step:.1f} tokens/s")
    hf_load = statistics.mean(hf_loads)
    if a.c3_passes > 1:
        c3_passes.append(c3_bench())
    # Headline: the slower c3 pass (conservative for c3 on a shared machine).
    c3_ms = max(p[0] for p in c3_passes)
    top2 = last.topk(2)
    gap = float(top2.values[0] - top2.values[1])
    stop_ids = manifest["generation"]["stop_ids"]
    if c3_first is None:
        agrees = hf_first in stop_ids and rt["finish_reason"] == "stop"
        c3_first_repr = f"a stop id ({'/'.join(map(str, stop_ids))})"
    else:
        agrees = hf_first == c3_first
        c3_first_repr = str(c3_first)
    bench_first = {n: sorted(v) for n, v in firsts.items()}
    consistent = all(len(v) == 1 for v in firsts.values()) and len({x for v in firsts.values() for x in v}) == 1

    hf_ms = median_ms(times["eager"])
    hf_l2k_ms = median_ms(times["logits_to_keep_1"]) if "logits_to_keep_1" in times else None
    result = {
        "measure": "time_to_first_token_ms",
        "doc_tokens": n_tok,
        "runs": a.runs,
        "hf_eager_ms": hf_ms,
        "hf_eager_logits_to_keep_1_ms": hf_l2k_ms,
        "c3_ms": c3_ms,
        "c3_ms_passes": [p[0] for p in c3_passes],
        "ratio_hf_eager_over_c3": hf_ms / c3_ms,
        "ratio_hf_logits_to_keep_1_over_c3": hf_l2k_ms / c3_ms if hf_l2k_ms else None,
        "target_ratio": 1.3,
        "meets_target": hf_ms / c3_ms >= 1.3,
        # On a busy machine the fastest run is the least disturbed one; c3 bench reports only medians.
        "hf_min_ms": {k: round(min(v) * 1e3, 1) for k, v in times.items()},
        "hf_runs_ms": {k: [round(x * 1e3, 1) for x in v] for k, v in times.items()},
        "hf_first_token_bench_doc": bench_first,
        "hf_first_token_consistent_across_runs_and_variants": consistent,
        "first_token_check": {
            "text_tokens": len(check_ids), "same_ids_as_timed_doc": check_ids == bench_ids,
            "hf": hf_first, "c3_roundtrip": c3_first, "c3_finish_reason": rt["finish_reason"],
            "c3_window_pad": rt_pad, "hf_top1_top2_logit_gap": gap,
        },
        "first_token_agrees": agrees,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "c3_threads": "ONNX Runtime default intra-op threads",
        "c3_bench_machine": bench.get("machine"),
        "machine": machine(),
        "loadavg_1min": {"c3_passes": [round(p[2], 2) for p in c3_passes], "hf_mean": round(hf_load, 2)},
        "tokenizer_cross_checked_with_tiktoken": tk_ok,
        "checkpoint": str(a.checkpoint), "export": str(a.export), "c3_binary": str(a.c3),
        "hf_load_seconds": round(hf.load_seconds, 1),
        "device": a.device, "provider": a.provider,
    }
    if a.decode_tokens:
        rtm = bench["runtime"]
        result["decode_tokens_per_second"] = {
            "steps": a.decode_tokens,
            "hf_b1": hf_decode["b1"], "hf_b8": hf_decode["b8"],
            "c3_b1": rtm["decode_tokens_per_second_b1"], "c3_b8": rtm["decode_tokens_per_second_b8"],
            "c3_over_hf_b1": rtm["decode_tokens_per_second_b1"] / hf_decode["b1"],
            "c3_over_hf_b8": rtm["decode_tokens_per_second_b8"] / hf_decode["b8"],
        }

    m = result["machine"]
    print(f"TTFT, {n_tok}-token document, median of {a.runs} runs after 1 warm-up")
    print(f"machine: {m['cpu']} ({m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs), "
          f"1-min load average: c3 {'/'.join(str(x) for x in result['loadavg_1min']['c3_passes'])}, "
          f"HF {result['loadavg_1min']['hf_mean']} (busy if above {m['usable_cpus']})")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}; "
          f"c3: ONNX Runtime, default threads")
    print(f"{'':44} {'ms':>10} {'HF / c3':>9}")
    print(f"{'HF transformers eager, fp32 (all-position logits)':44} {hf_ms:10.1f} {hf_ms / c3_ms:9.2f}")
    if hf_l2k_ms:
        print(f"{'HF transformers eager, logits_to_keep=1':44} {hf_l2k_ms:10.1f} {hf_l2k_ms / c3_ms:9.2f}")
    print(f"{'c3 runtime (c3 bench time_to_first_token_ms)':44} {c3_ms:10.1f} {1.0:9.2f}"
          + (f"   (slower of passes: {', '.join(f'{p[0]:.1f}' for p in c3_passes)})" if len(c3_passes) > 1 else ""))
    print("HF fastest run (least disturbed on a busy machine): " +
          ", ".join(f"{k} {v:.1f} ms ({v / c3_ms:.2f}x c3)" for k, v in result["hf_min_ms"].items()))
    print(f"target HF eager / c3 >= 1.3: {'met' if result['meets_target'] else 'NOT met'}")
    print(f"first token ({len(check_ids)}-token check text): HF {hf_first}, c3 {c3_first_repr} -> "
          f"{'agree' if agrees else 'DISAGREE'} (HF top-1/top-2 logit gap {gap:.3g})")
    print(json.dumps(result))
    return 0 if agrees else 1


if __name__ == "__main__":
    sys.exit(main())
