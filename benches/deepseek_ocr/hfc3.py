"""The C3 cascade in HF transformers (the framework DeepSeek-OCR-2 runs in here), random
weights at a preset's shape, for the same-framework ratio: HF DeepSeek-OCR-2 vs HF C3 on
one machine, so the ONNX Runtime runtime's own speed-up is not credited to C3's design.

The cascade is benches/hf_ttft.py's (spec section 2): encoder over text ids ++ <img> ++ N
query slots (rows replaced by Q), last hidden state at the slots -> projector (Linear
with bias) -> decoder prompt with the projected latents at the <imgpad> slots. Shapes
are `c3 init`'s presets (crates/c3-core/src/presets.rs): release = Qwen2.5-1.5B encoder
+ Qwen2.5-3B decoder.
"""

import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

from dsocr import synthetic_cache, timed

# (vocab, hidden, intermediate, layers, heads, kv heads, tied) per crates/c3-core/src/presets.rs
SHAPES = {
    "released": {"encoder": (151_936, 1536, 8960, 28, 12, 2, True),
                 "decoder": (151_860, 2048, 11_008, 36, 16, 2, True)},
    "tiny": {"encoder": (264, 64, 128, 2, 4, 2, True), "decoder": (264, 128, 256, 2, 4, 2, False)},
}
# The decoder prompt around the N latent slots (spec section 2): 21 ids before the
# first <imgpad> (<img> included), 11 after the last (</img> included): the release
# prompt tokenized with the Qwen vocabulary; checked against an export manifest in run.py.
PROMPT_BEFORE, PROMPT_AFTER = 21, 11


def qwen2(v, h, i, layers, heads, kv, tied):
    return Qwen2Config(vocab_size=v, hidden_size=h, intermediate_size=i, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=tied,
                       max_position_embeddings=32_768, rope_theta=1e6, rms_norm_eps=1e-6,
                       attn_implementation="sdpa")


def build_one(shape, part, dtype=torch.float32, seed=0):
    """The encoder or the decoder alone: timed one after the other, so the two never have
    to fit in memory together next to a paused background job (18.6 GB fp32 at the
    release shape); the latents are handed from one to the other as in the cascade."""
    torch.manual_seed(seed + (part == "decoder"))
    return Qwen2ForCausalLM(qwen2(*SHAPES[shape][part])).to(dtype).eval()


def time_encoder(enc, n, text_tokens, d_dec, *, device, dtype):
    """Encoder over `text_tokens` ids + <img> + N slots (rows replaced by Q), last hidden
    state at the slots, projector: (latents [N, d_dec], seconds)."""
    g = torch.Generator().manual_seed(n)
    d_enc = enc.config.hidden_size
    Q = (torch.randn(n, d_enc, generator=g) * 0.02).to(device, dtype)
    W = (torch.randn(d_dec, d_enc, generator=g) * 0.02).to(device, dtype)
    b = torch.zeros(d_dec, device=device, dtype=dtype)
    ids = torch.randint(0, enc.config.vocab_size - 1, (1, text_tokens + 1 + n), generator=g).to(device)
    with torch.inference_mode():
        def encode():
            emb = enc.model.embed_tokens(ids).clone()
            emb[0, text_tokens + 1:] = Q
            h = enc.model(inputs_embeds=emb, use_cache=False).last_hidden_state
            return h[0, text_tokens + 1:] @ W.T + b

        return timed(encode, device)


def time_decoder(dec, lat, text_tokens, *, quick_steps, device, dtype):
    """Decoder prefill with the latents at the <imgpad> slots, then decode steps at batch 1
    and 8 at the prompt's end and the page's end (synthetic caches)."""
    n = lat.shape[0]
    g = torch.Generator().manual_seed(n + 1)
    plen = PROMPT_BEFORE + n + PROMPT_AFTER
    pids = torch.randint(0, dec.config.vocab_size - 1, (1, plen), generator=g).to(device)
    with torch.inference_mode():
        def prefill():
            emb = dec.model.embed_tokens(pids).clone()
            emb[0, PROMPT_BEFORE:PROMPT_BEFORE + n] = lat
            cache = DynamicCache(config=dec.config)
            out = dec.model(inputs_embeds=emb, past_key_values=cache, use_cache=True)
            return dec.lm_head(out.last_hidden_state[:, -1]).argmax(-1), cache

        (nxt, cache), t_pre = timed(prefill, device)

        def one(x, c, pos):
            out = dec.model(input_ids=x[:, None], past_key_values=c, use_cache=True,
                            position_ids=torch.full((x.shape[0], 1), pos, device=device))
            return dec.lm_head(out.last_hidden_state[:, -1]).argmax(-1)

        steps = []
        for i in range(quick_steps):
            nxt, dt = timed(lambda: one(nxt, cache, plen + i), device)
            steps.append(dt)
        del cache
        end = plen + text_tokens - 1

        def synth(batch, pos):
            c = synthetic_cache(dec.config, batch, pos, device, dtype)
            x = torch.full((batch,), 1, device=device)
            ts = []
            for i in range(quick_steps + 1):
                x, dt = timed(lambda: one(x, c, pos + i), device)
                ts.append(dt)
            return sorted(ts[1:])[len(ts[1:]) // 2]

        b1_end, b8_start, b8_end = synth(1, end), synth(8, plen), synth(8, end)
    s1 = sorted(steps[1:] or steps)[len(steps[1:] or steps) // 2]
    return {"n_latents": n, "prompt_tokens": plen, "prefill_s": t_pre, "decode_step_s_b1": {"start": s1, "end": b1_end},
            "decode_step_s_b8": {"start": b8_start, "end": b8_end},
            "decode_tokens_per_s_b1": 1 / ((s1 + b1_end) / 2),
            "decode_tokens_per_s_b8": 8 / ((b8_start + b8_end) / 2),
            "decode_page_s": (text_tokens - 1) * (s1 + b1_end) / 2, "decode_page_extrapolated": True}
