#!/usr/bin/env python3
"""Generate the tiny C3 test checkpoint and golden outputs from an independent reference.

What it makes (all overwritten on every run):

  tests/fixtures/tiny/                      a tiny random C3 checkpoint in the release layout (fp32)
      config.json, model.safetensors        decoder (model_type "C3", tied lm_head) + model.Q + model.mm_projector
      llm1/config.json, llm1/model.safetensors   encoder (plain Qwen2ForCausalLM)
      tokenizer.json                        byte-level tokenizer: id = byte value, specials 256..261
  tests/fixtures/golden/tiny_golden.safetensors   latents, projections, prefill logits, greedy ids
  tests/fixtures/golden/tiny_golden.json          texts, seed, min logit gaps, stop reasons, versions
  tests/fixtures/golden/tokenizer_golden.json     Qwen tiktoken ids (+ HF tokenizer.json ids) for tricky texts

The reference is HF transformers' Qwen2 implementation (eager attention, fp32, CPU): the
only C3-specific logic here is the embedding injection and prompt layout of spec section 2,
so the goldens check our Rust implementation against code we did not write.

Needs:  pip install torch==2.13.0 transformers safetensors tiktoken
        (`tokenizers` comes with transformers) and the tokenizer files
        in .deps/tokenizers/ (scripts/install-deps.sh).
Run from the repository root:

    /path/to/python tests/golden/gen_golden.py
"""

import base64
import json
import os
import sys
import unicodedata
from pathlib import Path

# CPU only: goldens must not depend on whichever GPU kernels happen to be present.
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import tiktoken
import tokenizers
import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import Qwen2Config, Qwen2ForCausalLM
from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny"
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
DEPS = ROOT / ".deps" / "tokenizers"

# ---------------------------------------------------------------------------
# Tiny model contract
# ---------------------------------------------------------------------------
ENDOFTEXT, IM_START, IM_END, IMG, IMG_END, IMGPAD = 256, 257, 258, 259, 260, 261
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<imgpad>"]
N_LATENT = 4
ENC_VOCAB, DEC_VOCAB = 280, 272  # rows above 261 exist but no token maps to them
ENC_HIDDEN, DEC_HIDDEN = 48, 64

DOCS = [
    "The quick brown fox jumps over the lazy dog. 1234567890",
    "Short doc, 20 bytes.",
    "Context cascade compression squeezes a long text into a few latent vectors "
    "and then asks a second model to read it back.",
]
SYSTEM = "system\nYou should follow the instructions carefully and explain your answers in detail."
MAX_NEW_TOKENS = 40
STOP_IDS = (IM_END, ENDOFTEXT)
MIN_GAP = 1e-3
SEED_START, SEED_TRIES = 0, 200

# Written in the transformers-4.x layout (top-level rope_theta / torch_dtype) because that is
# what the released checkpoint ships and what our Rust loader must parse; transformers 5
# itself would serialise rope_parameters / dtype instead.
ENC_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "attention_dropout": 0.0,
    "bos_token_id": ENDOFTEXT,
    "eos_token_id": ENDOFTEXT,
    "hidden_act": "silu",
    "hidden_size": ENC_HIDDEN,
    "initializer_range": 0.02,
    "intermediate_size": 96,
    "max_position_embeddings": 512,
    "max_window_layers": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "sliding_window": 512,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": ENC_VOCAB,
}
DEC_CONFIG = {
    "architectures": ["C3QwenForCausalLM"],
    "model_type": "C3",
    "attention_dropout": 0.0,
    "bos_token_id": ENDOFTEXT,
    "eos_token_id": IM_END,
    "hidden_act": "silu",
    "hidden_size": DEC_HIDDEN,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
    "max_window_layers": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 512,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": DEC_VOCAB,
    # C3 extras
    "latent_token_len": N_LATENT,
    "contexts_compression_llm_hidden_size": ENC_HIDDEN,
    "im_start_token": IMG,
    "im_end_token": IMG_END,
    "im_patch_token": IMGPAD,
    "use_im_start_end": True,
}
QWEN2_FIELDS = [
    "hidden_act", "hidden_size", "intermediate_size", "max_position_embeddings",
    "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "rms_norm_eps",
    "rope_theta", "tie_word_embeddings", "vocab_size", "bos_token_id", "eos_token_id",
]

# Spec section 4.
QWEN_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
N_QWEN_RANKS = 151643


def qwen_special_tokens():
    names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    names += [f"<|extra_{i}|>" for i in range(205)]
    names += ["<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>"]
    table = {name: N_QWEN_RANKS + i for i, name in enumerate(names)}
    assert table["<img>"] == 151857 and table["<imgpad>"] == 151859 and len(table) == 217
    return table


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def write_json(path, obj, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, **kw)
        f.write("\n")


def save_tensors(path, tensors):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})
    os.chmod(path, 0o644)  # safetensors writes 0600; these are ordinary checked-in fixtures


def byte_ids(s):
    return list(s.encode("utf-8"))


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode char table (what ByteLevel emits)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


# ---------------------------------------------------------------------------
# 1. Tiny tokenizer
# ---------------------------------------------------------------------------
def build_tiny_tokenizer():
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    # use_regex=False: no word splitting, so ids are exactly the utf-8 bytes.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == 256 + i, (s, tok.token_to_id(s))
    for text in DOCS + ["café 😀 ñ\n\t  x", SYSTEM]:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert ids == byte_ids(text), text
        assert tok.decode(ids) == text
    TINY.mkdir(parents=True, exist_ok=True)
    tok.save(str(TINY / "tokenizer.json"))


# ---------------------------------------------------------------------------
# 1. Tiny random checkpoint
# ---------------------------------------------------------------------------
def random_state_dict(shapes, gen):
    """Large-ish random values so the random model has confident, tie-free argmaxes."""
    sd = {}
    for name in sorted(shapes):  # fixed order => same seed gives same weights
        shape = shapes[name]
        if name.endswith("embed_tokens.weight") or name.endswith("Q.weight"):
            t = torch.randn(shape, generator=gen)
        elif name.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.3 * torch.randn(shape, generator=gen)
        elif name.endswith(".weight") and len(shape) == 2:
            t = torch.randn(shape, generator=gen) * (1.5 / shape[1] ** 0.5)
        else:
            raise ValueError(f"no init rule for {name}")
        sd[name] = t.float().contiguous()
    return sd


def qwen2_shapes(cfg_dict):
    cfg = Qwen2Config(**{k: cfg_dict[k] for k in QWEN2_FIELDS})
    with torch.device("meta"):
        m = Qwen2ForCausalLM(cfg)
    # state_dict() lists a tied lm_head too; the release omits it, so drop it here.
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    if cfg_dict["tie_word_embeddings"]:
        shapes.pop("lm_head.weight")
    return shapes


def write_checkpoint(seed):
    gen = torch.Generator().manual_seed(seed)
    enc_sd = random_state_dict(qwen2_shapes(ENC_CONFIG), gen)
    dec_shapes = qwen2_shapes(DEC_CONFIG)
    dec_shapes["model.Q.weight"] = (N_LATENT, ENC_HIDDEN)
    dec_shapes["model.mm_projector.weight"] = (DEC_HIDDEN, ENC_HIDDEN)
    dec_shapes["model.mm_projector.bias"] = (DEC_HIDDEN,)
    dec_sd = random_state_dict(dec_shapes, gen)
    assert not any("rotary" in k or "inv_freq" in k for k in list(enc_sd) + list(dec_sd))
    assert "lm_head.weight" not in dec_sd and "lm_head.weight" in enc_sd

    write_json(TINY / "llm1" / "config.json", ENC_CONFIG)
    save_tensors(TINY / "llm1" / "model.safetensors", enc_sd)
    write_json(TINY / "config.json", DEC_CONFIG)
    save_tensors(TINY / "model.safetensors", dec_sd)


# ---------------------------------------------------------------------------
# 2. Reference models (read back from the files, so the goldens match the bytes on disk)
# ---------------------------------------------------------------------------
def load_encoder():
    model, info = Qwen2ForCausalLM.from_pretrained(
        str(TINY / "llm1"), dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    # Make sure transformers read the legacy top-level rope_theta rather than defaulting it.
    assert model.config.rope_parameters["rope_theta"] == ENC_CONFIG["rope_theta"], model.config.rope_parameters
    on_disk = load_file(str(TINY / "llm1" / "model.safetensors"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, on_disk[k]), k
    return model.eval()


def load_decoder():
    cfg_dict = json.loads((TINY / "config.json").read_text())
    # The root config says model_type "C3"; only its Qwen2 fields describe the decoder.
    cfg = Qwen2Config(**{k: cfg_dict[k] for k in QWEN2_FIELDS}, attn_implementation="eager")
    assert cfg.rope_parameters["rope_theta"] == DEC_CONFIG["rope_theta"], cfg.rope_parameters
    model = Qwen2ForCausalLM(cfg).float()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    sd = load_file(str(TINY / "model.safetensors"))
    extras = {k: sd.pop(k) for k in ("model.Q.weight", "model.mm_projector.weight", "model.mm_projector.bias")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert list(missing) == ["lm_head.weight"] and not unexpected, (missing, unexpected)
    # Tied: the output projection must be the embedding matrix we just loaded.
    assert torch.equal(model.lm_head.weight, sd["model.embed_tokens.weight"])
    return model.eval(), extras


# ---------------------------------------------------------------------------
# 2. Encoder: latents per spec section 2
# ---------------------------------------------------------------------------
def encoder_inputs(text_ids):
    # The trailing </img> is causal-invisible to the query slots, so it is omitted.
    ids = text_ids + [IMG] + [IMGPAD] * N_LATENT
    q_start = len(text_ids) + 1
    return ids, q_start


def encode_one(enc, Q, text_ids):
    ids, q0 = encoder_inputs(text_ids)
    emb = enc.model.embed_tokens(torch.tensor([ids])).clone()
    emb[0, q0 : q0 + N_LATENT] = Q
    pos = torch.arange(len(ids))[None]
    h = enc.model(inputs_embeds=emb, position_ids=pos, use_cache=False).last_hidden_state
    return h[0, q0 : q0 + N_LATENT]


def encode_batch_left_padded(enc, Q, docs_ids):
    seqs = [encoder_inputs(t) for t in docs_ids]
    L = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), L), ENDOFTEXT, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    q_rows = []
    for b, (s, q0) in enumerate(seqs):
        pad = L - len(s)
        ids[b, pad:] = torch.tensor(s)
        mask[b, pad:] = 1
        q_rows.append(pad + q0)
    emb = enc.model.embed_tokens(ids).clone()
    for b, q in enumerate(q_rows):
        emb[b, q : q + N_LATENT] = Q
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    h = enc.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
    return [h[b, q : q + N_LATENT] for b, q in enumerate(q_rows)]


# ---------------------------------------------------------------------------
# 2. Decoder: prompt, prefill, greedy generation
# ---------------------------------------------------------------------------
def decoder_prompt():
    ids = [IM_START] + byte_ids(SYSTEM) + [IM_END]
    ids += [IM_START] + byte_ids("user\n") + [IMG] + [IMGPAD] * N_LATENT + [IMG_END]
    ids += byte_ids("\nRepeat the text: ") + [IM_END] + [IM_START] + byte_ids("assistant\n")
    latent_start = ids.index(IMGPAD)
    assert ids[latent_start : latent_start + N_LATENT] == [IMGPAD] * N_LATENT
    return ids, latent_start


def prompt_embeds(dec, prompt_ids, latent_start, projected):
    emb = dec.model.embed_tokens(torch.tensor([prompt_ids])).clone()
    emb[0, latent_start : latent_start + N_LATENT] = projected
    return emb


def greedy(dec, prompt_ids, latent_start, projected, ngram):
    """KV-cached greedy decode; the n-gram ban sees prompt + generated ids, as HF generate does."""
    ban = NoRepeatNGramLogitsProcessor(ngram)
    emb = prompt_embeds(dec, prompt_ids, latent_start, projected)
    L = len(prompt_ids)
    out = dec(inputs_embeds=emb, position_ids=torch.arange(L)[None], use_cache=True)
    past, logits = out.past_key_values, out.logits[:, -1]
    seq = list(prompt_ids)
    gen, min_gap, steps_banning, steps_ban_changed, stop = [], float("inf"), 0, 0, None
    for step in range(MAX_NEW_TOKENS):
        raw = logits.float()
        scores = ban(torch.tensor([seq]), raw.clone())
        n_banned = int(torch.isinf(scores).sum())
        steps_banning += n_banned > 0
        steps_ban_changed += int(scores.argmax()) != int(raw.argmax())
        top2 = scores[0].topk(2).values
        min_gap = min(min_gap, float(top2[0] - top2[1]))
        nxt = int(scores.argmax())
        if nxt in STOP_IDS:
            stop = nxt
            break
        gen.append(nxt)
        seq.append(nxt)
        out = dec(
            input_ids=torch.tensor([[nxt]]),
            position_ids=torch.tensor([[L + step]]),
            past_key_values=past,
            use_cache=True,
        )
        past, logits = out.past_key_values, out.logits[:, -1]

    # Cross-check the cache path: recompute the last step's logits without a cache.
    full = torch.cat([emb, dec.model.embed_tokens(torch.tensor([gen], dtype=torch.long))], dim=1) if gen else emb
    ref_last = dec(inputs_embeds=full, position_ids=torch.arange(full.shape[1])[None], use_cache=False).logits[:, -1]
    cache_diff = float((ref_last - logits).abs().max())
    assert cache_diff < 1e-4, cache_diff

    return {
        "ids": gen,
        "min_gap": min_gap,
        "stopped_on": stop,  # None => hit max_new_tokens
        "steps_with_banned_tokens": int(steps_banning),
        "steps_where_ban_changed_argmax": int(steps_ban_changed),
        "kv_cache_vs_full_max_abs_diff": cache_diff,
    }


def run_reference(seed):
    """Build the checkpoint for `seed`, compute everything, and return (tensors, report)."""
    write_checkpoint(seed)
    enc = load_encoder()
    dec, extras = load_decoder()
    Q, W, b = extras["model.Q.weight"], extras["model.mm_projector.weight"], extras["model.mm_projector.bias"]
    prompt_ids, latent_start = decoder_prompt()
    docs_ids = [byte_ids(t) for t in DOCS]

    tensors, report = {}, {"seed": seed, "docs": {}}
    with torch.no_grad():
        latents = [encode_one(enc, Q, t) for t in docs_ids]
        batched = encode_batch_left_padded(enc, Q, docs_ids)
        batch_diff = max(float((a - c).abs().max()) for a, c in zip(latents, batched))
        report["batched_vs_unbatched_latents_max_abs_diff"] = batch_diff

        for i, (ids, lat) in enumerate(zip(docs_ids, latents)):
            proj = lat @ W.T + b
            tensors[f"doc{i}.text_ids"] = torch.tensor(ids, dtype=torch.long)
            tensors[f"doc{i}.latents"] = lat
            tensors[f"doc{i}.projected"] = proj
            runs = {"ngram20": greedy(dec, prompt_ids, latent_start, proj, 20)}
            if i == 0:
                emb = prompt_embeds(dec, prompt_ids, latent_start, proj)
                pos = torch.arange(len(prompt_ids))[None]
                tensors["doc0.prompt_ids"] = torch.tensor(prompt_ids, dtype=torch.long)
                tensors["doc0.prefill_logits"] = dec(inputs_embeds=emb, position_ids=pos, use_cache=False).logits[0]
                runs["ngram3"] = greedy(dec, prompt_ids, latent_start, proj, 3)
            for name, r in runs.items():
                tensors[f"doc{i}.greedy_{name}"] = torch.tensor(r["ids"], dtype=torch.long)
            report["docs"][f"doc{i}"] = {
                "text": DOCS[i],
                "n_text_ids": len(ids),
                "runs": {k: {kk: vv for kk, vv in r.items() if kk != "ids"} | {"n_generated": len(r["ids"])}
                         for k, r in runs.items()},
            }
    report["latent_start"] = latent_start
    report["prompt_len"] = len(prompt_ids)
    return tensors, report


def first_divergence(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def acceptable(report, tensors):
    """Seed filter. Beyond tie-free argmaxes, insist on goldens that can actually catch bugs."""
    batch_diff = report["batched_vs_unbatched_latents_max_abs_diff"]
    assert batch_diff <= 1e-5, batch_diff  # a real bug, not bad luck: never seed-search it away
    runs = {f"{d}.{k}": r for d, v in report["docs"].items() for k, r in v["runs"].items()}
    # Tie-free: an implementation within fp32 noise of the reference must pick the same tokens.
    gaps_ok = all(r["min_gap"] >= MIN_GAP for r in runs.values())
    # The n=3 golden is only useful if the ban actually redirects the greedy choice; likewise
    # at least one n=20 run should hit the spec-default ban.
    ban3_ok = runs["doc0.ngram3"]["steps_where_ban_changed_argmax"] >= 1
    ban20_ok = any(r["steps_where_ban_changed_argmax"] >= 1 for k, r in runs.items() if k.endswith("ngram20"))
    # Random decoders tend to ignore the 4 latent slots; require the very first generated token
    # to differ between every pair of docs so a broken latent path changes the greedy goldens.
    g = [tensors[f"doc{i}.greedy_ngram20"].tolist() for i in range(len(DOCS))]
    latents_matter = all(first_divergence(g[i], g[j]) == 0 for i in range(len(g)) for j in range(i + 1, len(g)))
    # Exercise both ways a generation ends.
    stops = [r["stopped_on"] for r in runs.values()]
    ends_ok = any(s is not None for s in stops) and any(s is None for s in stops)
    report["seed_criteria"] = {
        "min_gap_ge_threshold": gaps_ok, "ngram3_ban_changes_argmax": ban3_ok,
        "some_ngram20_ban_changes_argmax": ban20_ok, "docs_differ_at_first_token": latents_matter,
        "both_stop_and_max_tokens_seen": ends_ok,
    }
    return all(report["seed_criteria"].values())


def make_model_goldens():
    for seed in range(SEED_START, SEED_START + SEED_TRIES):
        torch.manual_seed(seed)  # nothing should draw from the global RNG, but pin it anyway
        tensors, report = run_reference(seed)
        ok = acceptable(report, tensors)
        failed = [k for k, v in report["seed_criteria"].items() if not v]
        print(f"seed {seed}: {'accepted' if ok else 'rejected: ' + ', '.join(failed)}")
        if ok:
            break
    else:
        sys.exit(f"no acceptable seed in [{SEED_START}, {SEED_START + SEED_TRIES})")

    assert tensors["doc0.prefill_logits"].shape == (report["prompt_len"], DEC_VOCAB)
    for i in range(len(DOCS)):
        assert tensors[f"doc{i}.latents"].shape == (N_LATENT, ENC_HIDDEN)
        assert tensors[f"doc{i}.projected"].shape == (N_LATENT, DEC_HIDDEN)
    save_tensors(GOLDEN / "tiny_golden.safetensors", tensors)
    report.update({
        "n_latent": N_LATENT,
        "max_new_tokens": MAX_NEW_TOKENS,
        "stop_ids": list(STOP_IDS),
        "min_gap_threshold": MIN_GAP,
        "generated_by": "tests/golden/gen_golden.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "safetensors_format": "pt"},
    })
    write_json(GOLDEN / "tiny_golden.json", report, ensure_ascii=False)
    print(f"seed used: {report['seed']}; batched vs unbatched latents max |diff| = "
          f"{report['batched_vs_unbatched_latents_max_abs_diff']:.3g}")
    for d, v in report["docs"].items():
        for k, r in v["runs"].items():
            print(f"  {d}.{k}: n={r['n_generated']} min_gap={r['min_gap']:.4f} stopped_on={r['stopped_on']} "
                  f"ban_steps={r['steps_with_banned_tokens']} ban_changed={r['steps_where_ban_changed_argmax']} "
                  f"cache_diff={r['kv_cache_vs_full_max_abs_diff']:.2g}")


# ---------------------------------------------------------------------------
# 3. Tokenizer goldens (real Qwen vocabulary)
# ---------------------------------------------------------------------------
TOKENIZER_TEXTS = {
    "english": "It's a test: we'll see whether I'M right, isn't it? They'd said \"no\" -- "
               "you're sure they've gone (twice)!",
    "chinese": "你好，世界。压缩上下文的级联模型。",
    "digits": "1234567890 3.14159 2026-11-22",
    "whitespace": "a   b\n\n\n  c\t\t d    \n",
    "img_tags": "Look: <img><imgpad><imgpad></img> is not an image.",
    "im_specials": "end here<|im_end|> then <|endoftext|> and <|im_start|>user",
    "emoji_accents": "café naïve 😀👍🏽",
    "nfc": "e\u0301 cafe\u0301",
    "mixed": "Line one.\r\nLine two:\tvalue=42; ÜBER straße ΑΒΓ — done…",
}


def load_tiktoken_ranks(path):
    ranks = {}
    for line in path.read_text().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    assert len(ranks) == N_QWEN_RANKS and sorted(ranks.values()) == list(range(N_QWEN_RANKS))
    return ranks


def make_tokenizer_goldens():
    specials = qwen_special_tokens()
    enc = tiktoken.Encoding(
        name="qwen",
        pat_str=QWEN_PAT,
        mergeable_ranks=load_tiktoken_ranks(DEPS / "qwen.tiktoken"),
        special_tokens=specials,
    )
    hf = Tokenizer.from_file(str(DEPS / "qwen2.5-tokenizer.json"))
    entries, mismatches = [], 0
    for name, text in TOKENIZER_TEXTS.items():
        nfc = unicodedata.normalize("NFC", text)
        # encode_ordinary: special-token strings in user text must stay plain text (spec section 4).
        tk = enc.encode_ordinary(nfc)
        decoded = enc.decode(tk)
        assert decoded == nfc, name
        # HF's tokenizer.json treats <|...|> as added tokens, so it is no reference for those texts.
        hf_ids = None if "<|" in text else hf.encode(text, add_special_tokens=False).ids
        if hf_ids is not None and hf_ids != tk:
            mismatches += 1
            print(f"MISMATCH {name}:\n  tiktoken {tk}\n  hf       {hf_ids}")
        entries.append({
            "name": name,
            "text": text,
            "nfc_text": nfc,
            "tiktoken_ids": tk,
            "hf_ids": hf_ids,
            "tiktoken_decode_equals_nfc_text": decoded == nfc,
        })
    assert mismatches == 0, f"{mismatches} tiktoken/HF mismatches"
    # ensure_ascii keeps combining marks and other invisible code points visible in review.
    write_json(GOLDEN / "tokenizer_golden.json", {
        "generated_by": "tests/golden/gen_golden.py",
        "pat_str": QWEN_PAT,
        "n_ordinary_ranks": N_QWEN_RANKS,
        "normalization": "NFC",
        "special_tokens": specials,
        "versions": {"tiktoken": tiktoken.__version__, "tokenizers": tokenizers.__version__},
        "texts": entries,
    }, ensure_ascii=True)
    compared = sum(e["hf_ids"] is not None for e in entries)
    print(f"tokenizer goldens: {len(entries)} texts, tiktoken == HF on all {compared} comparable texts")


def main():
    torch.set_num_threads(2)
    torch.set_default_device("cpu")
    torch.use_deterministic_algorithms(True)
    os.chdir(ROOT)
    build_tiny_tokenizer()
    make_model_goldens()
    make_tokenizer_goldens()


if __name__ == "__main__":
    main()
