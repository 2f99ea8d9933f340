#!/usr/bin/env python3
"""An independent PyTorch / HF transformers implementation of C3 training.

Two jobs, neither needed by the Rust project at build, run or test time:

* ``sweep``: trains recipe variants side by side (one process each) so the
  recipe table in docs/training/ can cover more variants than this project's
  2-core machine allows. Used once on a borrowed H200 (see docs/training/README.md).
  Each run writes ``metrics.jsonl`` (held-out char precision over time) and a
  checkpoint in the released C3 layout (spec section 3), which the Rust side
  loads like any other (``c3 inspect``, ``c3 export``, ``c3 eval``).
* ``parity``: writes, once, what the Rust training-parity test compares against
  (initial weights, one batch, the loss and per-tensor gradient norms after one
  backward pass): ``crates/c3-train/tests/parity.rs``. CPU, fp32, eager
  attention, two small models (embeddings tied / untied), one batch of passages
  of different lengths (left-padded encoder, right-padded answers, no word
  dropout). Regenerate from the repository root with::

      /work/pyref/bin/python tools/train-reference/c3_ref.py parity --out tests/fixtures/parity

  (any Python with torch, transformers >= 4.5x, safetensors and tokenizers).

The model is HF transformers' Qwen2 (encoder ``llm1`` and decoder) plus the C3
pieces of spec section 2: the learned queries ``model.Q`` replace the ``<imgpad>``
rows after the text, the latents are the encoder's final-norm hidden states at
those rows, ``model.mm_projector`` (Linear with bias) maps them to the decoder
width, and they replace the ``<imgpad>`` rows of the fixed decoder prompt. Loss:
mean cross entropy on the answer and its closing ``<|im_end|>``.
"""

import argparse
import json
import math
import os
import random
import sys
import time
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import Qwen2Config, Qwen2ForCausalLM

SYSTEM = "You should follow the instructions carefully and explain your answers in detail."
TASK = "Repeat the text: "
EXTS = (".txt", ".md", ".rst", ".pod")


class Specials:
    def __init__(self, tok):
        get = tok.token_to_id
        self.endoftext, self.im_start, self.im_end = get("<|endoftext|>"), get("<|im_start|>"), get("<|im_end|>")
        self.img, self.img_end, self.imgpad = get("<img>"), get("</img>"), get("<imgpad>")
        self.all = {self.endoftext, self.im_start, self.im_end, self.img, self.img_end, self.imgpad}


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def decoder_prompt(tok, sp, n):
    """The prompt of spec section 2, built piecewise exactly as c3-core's DecoderPrompt."""
    ids = [sp.im_start] + encode(tok, "system\n" + SYSTEM) + [sp.im_end, sp.im_start]
    ids += encode(tok, "user\n") + [sp.img]
    start = len(ids)
    ids += [sp.imgpad] * n + [sp.img_end] + encode(tok, "\n" + TASK)
    ids += [sp.im_end, sp.im_start] + encode(tok, "assistant\n")
    return ids, start


def windows(tok, sp, paths, min_len, max_len, seed):
    """Corpus documents cut into passages of min..max tokens (fixed when equal)."""
    rng = random.Random(seed)
    files = []
    for p in paths:
        p = Path(p)
        files += sorted(f for f in p.rglob("*") if f.suffix in EXTS) if p.is_dir() else [p]
    out = []
    for f in files:
        text = f.read_text(errors="strict")
        if not text.strip():
            continue
        ids = encode(tok, text)
        pos = 0
        while pos + min_len <= len(ids):
            n = min(rng.randint(min_len, max_len), len(ids) - pos)
            piece = ids[pos : pos + n]
            pos += n
            if sp.all.intersection(piece):
                continue
            t = tok.decode(piece, skip_special_tokens=False)
            if "\ufffd" in t or not t.strip():
                continue
            out.append((piece, t))
    return out


def qwen_config(shape, vocab):
    return Qwen2Config(
        vocab_size=vocab, hidden_size=shape["hidden_size"], intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_hidden_layers"], num_attention_heads=shape["num_attention_heads"],
        num_key_value_heads=shape["num_key_value_heads"], max_position_embeddings=shape["max_position_embeddings"],
        rope_theta=shape["rope_theta"], rms_norm_eps=1e-6, tie_word_embeddings=shape["tie_word_embeddings"],
        hidden_act="silu", attention_dropout=0.0, use_sliding_window=False, initializer_range=0.02,
    )


class C3(torch.nn.Module):
    def __init__(self, enc_cfg, dec_cfg, n, attn):
        super().__init__()
        enc_cfg._attn_implementation = attn
        dec_cfg._attn_implementation = attn
        self.enc = Qwen2ForCausalLM(enc_cfg)
        self.dec = Qwen2ForCausalLM(dec_cfg)
        self.Q = torch.nn.Parameter(torch.randn(n, enc_cfg.hidden_size) * 0.02)
        self.proj = torch.nn.Linear(enc_cfg.hidden_size, dec_cfg.hidden_size)
        torch.nn.init.normal_(self.proj.weight, std=0.02)
        torch.nn.init.zeros_(self.proj.bias)
        self.n = n

    def latents(self, text_ids, sp):
        """text_ids [B, T] (equal lengths: no padding) -> projected latents [B, N, D_dec]."""
        b = text_ids.shape[0]
        img = torch.full((b, 1), sp.img, device=text_ids.device)
        emb = self.enc.model.embed_tokens(torch.cat([text_ids, img], 1))
        emb = torch.cat([emb, self.Q[None].expand(b, -1, -1).to(emb.dtype)], 1)
        h = self.enc.model(inputs_embeds=emb, use_cache=False).last_hidden_state
        return self.proj(h[:, -self.n :])

    def prompt_embeds(self, prompt, start, lat):
        b = lat.shape[0]
        e = self.dec.model.embed_tokens(prompt)[None].expand(b, -1, -1)
        return torch.cat([e[:, :start], lat.to(e.dtype), e[:, start + self.n :]], 1)

    def loss(self, text_ids, inputs, labels, prompt, start, sp):
        pe = self.prompt_embeds(prompt, start, self.latents(text_ids, sp))
        x = torch.cat([pe, self.dec.model.embed_tokens(inputs)], 1)
        h = self.dec.model(inputs_embeds=x, use_cache=False).last_hidden_state
        logits = self.dec.lm_head(h[:, prompt.shape[0] - 1 :]).float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def greedy(self, text_ids, prompt, start, sp, max_new):
        pe = self.prompt_embeds(prompt, start, self.latents(text_ids, sp))
        out = self.dec(inputs_embeds=pe, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
        gen, done = [], torch.zeros_like(nxt, dtype=torch.bool)
        for _ in range(max_new):
            done |= (nxt == sp.im_end) | (nxt == sp.endoftext)
            gen.append(torch.where(done, -1, nxt))
            if bool(done.all()):
                break
            out = self.dec(input_ids=nxt[:, None], past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
        rows = torch.stack(gen, 1).tolist()
        return [[t for t in r if t >= 0] for r in rows]


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_precision(ref, out):
    d = max(len(ref), len(out))
    return 1.0 if d == 0 else 1.0 - levenshtein(ref, out) / d


def lr_at(step, peak, warmup, total, floor_ratio):
    """c3-train's schedule: linear warmup, then cosine to floor_ratio * peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    floor = peak * floor_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


def make_batch(passages, idx, sp, dropout, rng, dev):
    ids = torch.tensor([passages[i][0] for i in idx], device=dev)
    inputs = ids.clone()
    if dropout > 0:
        mask = torch.rand(ids.shape, generator=rng, device="cpu").to(dev) < dropout
        inputs = inputs.masked_fill(mask, sp.endoftext)
    labels = torch.cat([ids, torch.full((ids.shape[0], 1), sp.im_end, device=dev)], 1)
    return ids, inputs, labels


def save_checkpoint(model, r, tok_path, sp, out, n, window):
    """Release layout (spec section 3), fp32: root = decoder + Q + projector, llm1 = encoder."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "llm1").mkdir(exist_ok=True)
    dec_sd = {k: v.detach().float().cpu().contiguous() for k, v in model.dec.state_dict().items()}
    if r["model"]["decoder"]["tie_word_embeddings"]:
        dec_sd.pop("lm_head.weight", None)
    dec_sd["model.Q.weight"] = model.Q.detach().float().cpu().contiguous()
    dec_sd["model.mm_projector.weight"] = model.proj.weight.detach().float().cpu().contiguous()
    dec_sd["model.mm_projector.bias"] = model.proj.bias.detach().float().cpu().contiguous()
    enc_sd = {k: v.detach().float().cpu().contiguous() for k, v in model.enc.state_dict().items()}
    if r["model"]["encoder"]["tie_word_embeddings"]:
        enc_sd.pop("lm_head.weight", None)
    save_file(dec_sd, str(out / "model.safetensors"))
    save_file(enc_sd, str(out / "llm1" / "model.safetensors"))

    def cfg(shape, vocab):
        return {
            "vocab_size": vocab, "hidden_size": shape["hidden_size"], "intermediate_size": shape["intermediate_size"],
            "num_hidden_layers": shape["num_hidden_layers"], "num_attention_heads": shape["num_attention_heads"],
            "num_key_value_heads": shape["num_key_value_heads"],
            "max_position_embeddings": shape["max_position_embeddings"], "rope_theta": shape["rope_theta"],
            "rms_norm_eps": 1e-6, "tie_word_embeddings": shape["tie_word_embeddings"], "hidden_act": "silu",
            "torch_dtype": "float32",
        }

    vocab = model.dec.config.vocab_size
    root = cfg(r["model"]["decoder"], vocab)
    root.update({
        "model_type": "C3", "architectures": ["C3QwenForCausalLM"], "latent_token_len": n,
        "contexts_compression_llm_hidden_size": r["model"]["encoder"]["hidden_size"],
        "im_start_token": sp.img, "im_end_token": sp.img_end, "im_patch_token": sp.imgpad,
        "use_im_start_end": True, "window_tokens": window,
    })
    enc = cfg(r["model"]["encoder"], model.enc.config.vocab_size)
    enc.update({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]})
    (out / "config.json").write_text(json.dumps(root, indent=2) + "\n")
    (out / "llm1" / "config.json").write_text(json.dumps(enc, indent=2) + "\n")
    (out / "tokenizer.json").write_bytes(Path(tok_path).read_bytes())


def build(r, dev, attn):
    tok_path = r["model"]["tokenizer"]
    tok = Tokenizer.from_file(tok_path)
    sp = Specials(tok)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    n = r["model"]["latent_tokens"]
    torch.manual_seed(r.get("seed", 0))
    model = C3(qwen_config(r["model"]["encoder"], vocab), qwen_config(r["model"]["decoder"], vocab), n, attn).to(dev)
    prompt, start = decoder_prompt(tok, sp, n)
    return tok, tok_path, sp, model, torch.tensor(prompt, device=dev), start


def sweep_run(args):
    r = tomllib.loads(Path(args.recipe).read_text())
    for kv in args.set or []:  # dotted overrides: optim.lr=1e-3
        k, v = kv.split("=", 1)
        d = r
        *path, last = k.split(".")
        for p in path:
            d = d.setdefault(p, {})
        d[last] = json.loads(v)
    dev = torch.device(args.device)
    tok, tok_path, sp, model, prompt, start = build(r, dev, "sdpa")
    d, o, s = r["data"], r["optim"], r["schedule"]
    passages = windows(tok, sp, d["paths"], d["min_tokens"], d["max_tokens"], r.get("seed", 0))
    order = list(range(len(passages)))
    random.Random(r.get("seed", 0) ^ 0x0E7A1D00).shuffle(order)
    held, train = order[: d["held_out"]], order[d["held_out"] :]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "metrics.jsonl", "w")
    opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=o.get("weight_decay", 0.0))
    rng = torch.Generator().manual_seed(r.get("seed", 0))
    brng = random.Random(r.get("seed", 0))
    bs, warm = o["batch_size"], s["warmup_steps"]
    t_end = time.time() + args.seconds
    total, step, t0 = s["total_steps"], 0, time.time()
    evals = s.get("eval_every", 1000)
    log.write(json.dumps({"config": r, "train": len(train), "held_out": len(held), "device": str(dev)}) + "\n")

    def evaluate():
        model.eval()
        ps = [passages[i] for i in held[: s.get("eval_passages", 64)]]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            gens = model.greedy(torch.tensor([p[0] for p in ps], device=dev), prompt, start, sp,
                                d["max_tokens"] + 8)
        model.train()
        outs = [tok.decode(g, skip_special_tokens=False).strip() for g in gens]
        cps = [char_precision(p[1].strip(), q) for p, q in zip(ps, outs)]
        return sum(cps) / len(cps), (ps[0][1].strip(), outs[0])

    while step < total:
        if step == 200 and args.seconds:
            # Fill the wall-clock budget: total steps from the measured rate (cosine over them).
            rate = step / (time.time() - t0)
            total = max(step + 1, int(rate * (t_end - time.time()) * 0.93))
            log.write(json.dumps({"step": step, "total_steps": total, "steps_per_s": rate}) + "\n")
        lr = lr_at(step, o["lr"], warm, total, s.get("min_lr_ratio", 0.05))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = [train[brng.randrange(len(train))] for _ in range(bs)]
        ids, inputs, labels = make_batch(passages, idx, sp, d.get("word_dropout", 0.0), rng, dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = model.loss(ids, inputs, labels, prompt, start, sp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), o.get("clip", 1.0))
        opt.step()
        step += 1
        if step % 100 == 0:
            log.write(json.dumps({"step": step, "loss": loss.item(), "lr": lr, "grad_norm": gn.item(),
                                  "elapsed_s": time.time() - t0}) + "\n")
            log.flush()
        if step % evals == 0 or step == total:
            cp, ex = evaluate()
            log.write(json.dumps({"step": step, "eval_char_precision": cp, "example": ex,
                                  "elapsed_s": time.time() - t0}) + "\n")
            log.flush()
    window = d["max_tokens"] if d["min_tokens"] == d["max_tokens"] else None
    save_checkpoint(model, r, tok_path, sp, out / "checkpoint", r["model"]["latent_tokens"], window)
    log.write(json.dumps({"done": step, "elapsed_s": time.time() - t0}) + "\n")


# ---------------------------------------------------------------- parity ----
# Passages of different lengths (so both kinds of padding occur), one with
# multi-byte UTF-8; the tiny fixture's tokenizer is byte level.
PARITY_TEXTS = [
    "The cat sat.",
    "Context cascade compression packs a long text into a few latent vectors.",
    "Caf\u00e9 na\u00efve: 12 apples, 7 pears!",
]


def parity_shapes(tied):
    """Small Qwen2 shapes; the two models get different rope_theta so each must be read."""
    enc = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=128, rope_theta=10000.0, tie_word_embeddings=tied)
    dec = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=512, rope_theta=1e6, tie_word_embeddings=tied)
    return enc, dec


def padded_batch(passages, sp, n):
    """c3-train's batching semantics, written independently: encoder rows
    ``text <img> <imgpad>*N`` left-padded with ``<|endoftext|>`` (mask 0 there);
    decoder answers ``text <|im_end|>`` right-padded; the decoder input after the
    prompt is the answer without its last token, labels are the answer, -100 on padding."""
    b = len(passages)
    enc = [list(p) + [sp.img] + [sp.imgpad] * n for p in passages]
    width = max(map(len, enc))
    ids = torch.full((b, width), sp.endoftext)
    emask = torch.zeros((b, width), dtype=torch.long)
    for r, row in enumerate(enc):
        ids[r, width - len(row):] = torch.tensor(row)
        emask[r, width - len(row):] = 1
    answers = [list(p) + [sp.im_end] for p in passages]
    a = max(map(len, answers))
    inputs = torch.full((b, a - 1), sp.endoftext)
    dmask = torch.zeros((b, a - 1), dtype=torch.long)
    labels = torch.full((b, a), -100)
    for r, ans in enumerate(answers):
        labels[r, : len(ans)] = torch.tensor(ans)
        inputs[r, : len(ans) - 1] = torch.tensor(ans[:-1])
        dmask[r, : len(ans) - 1] = 1
    return ids, emask, inputs, dmask, labels


def padded_latents(model, ids, emask):
    """Projected latents of a left-padded batch: per-row positions 0..len-1 and an
    attention mask, so each row equals its unbatched self."""
    pos = (emask.cumsum(1) - 1).clamp(min=0)
    emb = model.enc.model.embed_tokens(ids)
    q = model.Q[None].expand(ids.shape[0], -1, -1).to(emb.dtype)
    emb = torch.cat([emb[:, : -model.n], q], 1)
    h = model.enc.model(inputs_embeds=emb, attention_mask=emask, position_ids=pos, use_cache=False).last_hidden_state
    return model.proj(h[:, -model.n :])


def padded_loss(model, batch, prompt, start):
    ids, emask, inputs, dmask, labels = batch
    pe = model.prompt_embeds(prompt, start, padded_latents(model, ids, emask))
    x = torch.cat([pe, model.dec.model.embed_tokens(inputs)], 1)
    lp = prompt.shape[0]
    mask = torch.cat([torch.ones((x.shape[0], lp), dtype=torch.long), dmask], 1)
    pos = torch.arange(x.shape[1])[None].expand(x.shape[0], -1)
    h = model.dec.model(inputs_embeds=x, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
    logits = model.dec.lm_head(h[:, lp - 1 :]).float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def parity_case(tok_path, out, name, tied, seed):
    enc_shape, dec_shape = parity_shapes(tied)
    n = 4
    r = {"seed": seed, "model": {"tokenizer": str(tok_path), "latent_tokens": n,
                                 "encoder": enc_shape, "decoder": dec_shape}}
    tok, _, sp, model, prompt, start = build(r, torch.device("cpu"), "eager")
    # HF init leaves biases 0 and norms 1: jitter every tensor so a tensor the
    # loader skipped or misplaced changes the loss.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() == 1 else 0.02))
    model.train()
    passages = [encode(tok, t) for t in PARITY_TEXTS]
    assert len(set(map(len, passages))) == len(passages), "passage lengths must differ"
    batch = padded_batch(passages, sp, n)
    # The padded encoder path must equal the unpadded one row by row.
    with torch.no_grad():
        both = padded_latents(model, batch[0], batch[1])
        for r_, p in enumerate(passages):
            one = model.latents(torch.tensor([p]), sp)
            assert torch.allclose(both[r_], one[0], atol=1e-5), f"row {r_}: padding changes the latents"
    loss = padded_loss(model, batch, prompt, start)
    loss.backward()
    dest = out / name
    save_checkpoint(model, r, tok_path, sp, dest, n, None)
    # Gradient names: root tensors by their model.safetensors key, encoder tensors
    # by their llm1/model.safetensors key prefixed "llm1."; a tied lm_head is the
    # embedding (one tensor). A parameter the loss does not reach has norm 0.
    params = [("llm1." + k, p) for k, p in model.enc.named_parameters()]
    params += list(model.dec.named_parameters())
    params += [("model.Q.weight", model.Q), ("model.mm_projector.weight", model.proj.weight),
               ("model.mm_projector.bias", model.proj.bias)]
    grads = {}
    for k, p in params:
        gr = torch.zeros_like(p) if p.grad is None else p.grad
        grads[k] = {"shape": list(p.shape), "norm": gr.double().norm().item(),
                    "dot_param": (gr.double() * p.detach().double()).sum().item(),
                    "reached": p.grad is not None}
    golden = {
        "generator": "tools/train-reference/c3_ref.py parity",
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "device": "cpu", "dtype": "float32", "attn": "eager", "seed": seed, "tied": tied,
        "n_latents": n, "word_dropout": 0.0, "texts": PARITY_TEXTS, "passages": passages,
        "prompt_ids": prompt.tolist(), "latent_start": start,
        "n_label_tokens": int((batch[4] != -100).sum()), "loss": loss.item(),
        "grad_names": "root: model.safetensors keys; encoder: 'llm1.' + llm1/model.safetensors keys",
        "grads": grads,
    }
    # One key (one gradient) per line: reviewable diffs, full float64 precision.
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in golden.items() if k != "grads"]
    lines.append(' "grads": {\n' + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in grads.items())
                 + "\n }")
    (out / f"{name}.golden.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{name}: loss {loss.item():.8f}, {len(grads)} tensors -> {dest}")


def parity(args):
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.txt").write_text("\n".join(PARITY_TEXTS) + "\n")
    for name, tied in (("tied", True), ("untied", False)):
        parity_case(Path(args.tokenizer), out, name, tied, args.seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("sweep", help="train one recipe variant")
    t.add_argument("--recipe", required=True)
    t.add_argument("--set", action="append", help="dotted override, value as JSON: optim.lr=1e-3")
    t.add_argument("--out", required=True)
    t.add_argument("--device", default="cuda")
    t.add_argument("--seconds", type=float, default=0, help="fit total steps into this wall time")
    p = sub.add_parser("parity", help="write the Rust training-parity fixtures (CPU, fp32)")
    p.add_argument("--out", default="tests/fixtures/parity")
    p.add_argument("--tokenizer", default="tests/fixtures/tiny/tokenizer.json")
    p.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.cmd == "sweep":
        sweep_run(a)
    elif a.cmd == "parity":
        parity(a)


if __name__ == "__main__":
    main()
