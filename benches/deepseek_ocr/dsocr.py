"""DeepSeek-OCR-2 through HF transformers 5.23.0 (`transformers/models/deepseek_ocr2`): the
released architecture with random weights (its weights are not reachable here), a tiny
configuration for tests, or real weights from a local folder (`--ocr-checkpoint`).

Where the released numbers come from:
- Decoder (DeepSeek-3B-MoE, the same in DeepSeek-OCR v1 and OCR-2): the public
  `language_config` of deepseek-ai/DeepSeek-OCR-2's config.json, restated in
  /work/shared/environment.md ("DeepSeek-OCR at hand") and in issue 23: hidden 1280,
  12 layers, 10 heads, 10 kv heads (no MLA), vocab 129,280, first layer dense
  (intermediate 6848), then 64 routed experts of 896, 6 per token, 2 shared.
- SAM ViT-B: the same sources; 768 wide, 12 layers, 12 heads, window 14, global
  layers 2/5/8/11, neck 256 channels, downsample convs 512 -> 896 (these equal
  `DeepseekOcr2SamVisionConfig`'s defaults; set explicitly so a changed default
  cannot change the model).
- Visual encoder: "Qwen2-0.5B-shaped" (the OCR-2 paper and model card); Qwen2-0.5B's
  public config.json: hidden 896, 24 layers, 14 heads, 2 kv heads, intermediate 4864,
  rope_theta 1e6. It has no token embedding here (it reads SAM features + queries).
Built on the meta device this is 3,389,119,360 parameters (tests/test_ocr_baseline.py
checks it within 1%, and the components).
"""

import math
import time

import torch
from transformers import DeepseekOcr2Config, DeepseekOcr2ForConditionalGeneration, DynamicCache
from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
    DeepseekOcr2ImageProcessorPil,
)

EXPECTED_PARAMS = 3_389_119_360
# Components (meta-device counts, issue 23): SAM 95.0M, visual encoder 357.9M, queries
# 0.36M, projector 1.1M, decoder 2,769.3M (embeddings included), LM head 165.5M.
EXPECTED_PARTS = {"sam_encoder": 94_979_328, "vision_encoder": 357_898_112,
                  "queries": 358_400, "multi_modal_projector": 1_148_160,
                  "language_model": 2_769_255_680, "lm_head": 165_478_400}

RELEASED = {
    "text": dict(vocab_size=129_280, hidden_size=1280, intermediate_size=6848, num_hidden_layers=12,
                 num_attention_heads=10, num_key_value_heads=10, n_routed_experts=64,
                 moe_intermediate_size=896, num_experts_per_tok=6, n_shared_experts=2,
                 mlp_layer_types=["dense"] + ["sparse"] * 11, max_position_embeddings=8192),
    "sam": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, window_size=14,
                global_attn_indexes=[2, 5, 8, 11], output_channels=256, downsample_channels=[512, 896]),
    "encoder": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                    intermediate_size=4864, rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}),
    "image_token_id": 128_815,  # DeepseekOcr2Config's default: the released tokenizer's <image>
}
# Tests only: every structural feature of the release (SAM windows + global layers, both
# query sets, dense + MoE layers, shared experts) at widths that run in seconds.
TINY = {
    "text": dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4, moe_intermediate_size=32,
                 num_experts_per_tok=2, n_shared_experts=1, mlp_layer_types=["dense", "sparse"],
                 max_position_embeddings=8192),
    "sam": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, window_size=14,
                global_attn_indexes=[1], output_channels=16, downsample_channels=[32, 64]),
    "encoder": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    intermediate_size=128),
    "image_token_id": 1000,
}
SHAPES = {"released": RELEASED, "tiny": TINY}

# The released prompt is "<image>\nFree OCR. " after a BOS; with random weights only its
# length matters: BOS + image tokens + these 4 ids (assumed length of "\nFree OCR. ").
PROMPT_TAIL = [201, 28591, 22480, 16]
BOS = 0

# Modes: which views feed the decoder. The processor only works with 1024 and 768 views
# (it counts (side/64)^2 tokens; the model's learned queries are 256 and 144).
MODES = {
    "global-768": "the processor's no-tile mode: the page scaled into one 768 view (144 + 1 tokens)",
    "global-1024": "the 1024 global view alone, tiles dropped (256 + 1 tokens)",
    "tiles": "the default: 1024 global view + 768 tiles (2-6; 6 for these 3:4 pages) (256 + 144 x tiles + 1)",
}


def config(shape="released"):
    s = SHAPES[shape]
    return DeepseekOcr2Config(text_config=dict(s["text"]),
                              vision_config=dict(sam_config=dict(s["sam"]), encoder_config=dict(s["encoder"])),
                              image_token_id=s["image_token_id"])


def count_parameters(shape="released"):
    """(total, parts) of the model built on the meta device (no memory)."""
    with torch.device("meta"):
        m = DeepseekOcr2ForConditionalGeneration(config(shape))
    vt = m.model.vision_tower
    n = lambda mod: sum(p.numel() for p in mod.parameters())
    parts = {"sam_encoder": n(vt.sam_encoder), "vision_encoder": n(vt.vision_encoder),
             "queries": vt.query_768_resolution.weight.numel() + vt.query_1024_resolution.weight.numel(),
             "multi_modal_projector": n(m.model.multi_modal_projector),
             "language_model": n(m.model.language_model), "lm_head": n(m.lm_head),
             "view_separator": m.model.view_separator.numel()}
    return n(m), parts


def active_parameters_per_token(shape="released"):
    """Decoder parameters one text token uses: attention, the dense layer, shared + routed
    experts chosen per token, norms, router, its embedding row and the LM head
    (~574M at the release, as issue 23 quotes)."""
    t = SHAPES[shape]["text"]
    h, L = t["hidden_size"], t["num_hidden_layers"]
    attn = 4 * h * h
    dense = 3 * h * t["intermediate_size"]
    expert = 3 * h * t["moe_intermediate_size"]
    n_dense = t["mlp_layer_types"].count("dense")
    moe = (t["n_shared_experts"] + t["num_experts_per_tok"]) * expert + h * t["n_routed_experts"]
    return L * attn + n_dense * dense + (L - n_dense) * moe + 2 * L * h + h + h + t["vocab_size"] * h


def build(shape="released", dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    m = DeepseekOcr2ForConditionalGeneration(config(shape)).to(dtype)
    return m.eval()


def image_processor():
    # Built locally: DeepseekOcr2Processor.from_pretrained would fetch from the hub.
    return DeepseekOcr2ImageProcessorPil()


def preprocess(proc, image, mode):
    """Pixel tensors for `mode` and the number of image tokens the decoder reads."""
    if mode == "global-768":
        out = proc(images=[image], crop_to_patches=False, return_tensors="pt")
        local, nloc = None, [0]
    else:
        out = proc(images=[image], crop_to_patches=True, return_tensors="pt")
        nloc = [int(x) for x in out["num_local_patches"]]
        local = out.get("pixel_values_local") if mode == "tiles" else None
        if mode == "global-1024":
            nloc = [0]
    side = out["pixel_values"].shape[-1]
    g = math.ceil(side / 16 / 4) ** 2  # (side/64)^2: 256 at 1024, 144 at 768
    n_tokens = g + 144 * nloc[0] + 1
    return out["pixel_values"], local, nloc, n_tokens


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    _sync(device)
    t0 = time.perf_counter()
    r = fn()
    _sync(device)
    return r, time.perf_counter() - t0


def synthetic_cache(text_cfg, batch, length, device, dtype):
    """A KV cache of `length` positions with random contents: a decode step costs the same
    with these as with real keys/values (the time depends on shapes only)."""
    c = DynamicCache(config=text_cfg)
    kvh = text_cfg.num_key_value_heads
    hd = text_cfg.hidden_size // text_cfg.num_attention_heads
    for i in range(text_cfg.num_hidden_layers):
        k = torch.randn(batch, kvh, length, hd, device=device, dtype=dtype)
        c.update(k, torch.randn_like(k), i)
    return c


def step(model, ids, cache, pos):
    """One decode step at position `pos` for a batch of ids; returns the next ids (greedy)."""
    b = ids.shape[0]
    out = model.model.language_model(input_ids=ids[:, None], past_key_values=cache, use_cache=True,
                                     position_ids=torch.full((b, 1), pos, device=ids.device))
    logits = model.lm_head(out.last_hidden_state[:, -1])
    return logits.argmax(-1)


def time_mode(model, proc, page, mode, *, decode_tokens, quick_steps, full, device, dtype):
    """Times one page through one mode. Quick: `quick_steps` greedy steps after the prefill
    and `quick_steps` steps on a synthetic cache at the page's end position, batch 1 and 8;
    full: the whole page greedily (decode length = the page's text tokens, forced: the
    stop token is never checked) at batch 1, plus the batch-8 steps as in quick."""
    image = page["image"]
    (pv, local, nloc, n_img), t_proc = timed(lambda: preprocess(proc, image, mode), device)
    pv = pv.to(device, dtype)
    local = local.to(device, dtype) if local is not None else None
    tail = [t % model.config.text_config.vocab_size for t in PROMPT_TAIL]
    ids = torch.tensor([[BOS] + [model.config.image_token_id] * n_img + tail], device=device)
    plen = ids.shape[1]
    tc = model.config.text_config
    with torch.inference_mode():
        feats, t_enc = timed(lambda: model.model.get_image_features(
            pv, local, nloc if local is not None else None, return_dict=True).pooler_output, device)
        feats = torch.cat(feats, 0)
        if feats.shape[0] != n_img:
            raise RuntimeError(f"{mode}: model made {feats.shape[0]} image features, processor counted {n_img}")

        def prefill():
            emb = model.model.language_model.embed_tokens(ids)
            mask = (ids == model.config.image_token_id)[..., None]
            emb = emb.masked_scatter(mask, feats.to(emb.dtype))
            cache = DynamicCache(config=tc)
            out = model.model.language_model(inputs_embeds=emb, past_key_values=cache, use_cache=True)
            return model.lm_head(out.last_hidden_state[:, -1]).argmax(-1), cache

        (nxt, cache), t_pre = timed(prefill, device)
        n_steps = decode_tokens - 1 if full else quick_steps
        steps = []
        for i in range(n_steps):
            nxt, dt = timed(lambda: step(model, nxt, cache, plen + i), device)
            steps.append(dt)
        del cache
        end = plen + decode_tokens - 1

        def synth_steps(batch, pos):
            c = synthetic_cache(tc, batch, pos, device, dtype)
            x = torch.full((batch,), 1, device=device)
            ts = []
            for i in range(quick_steps + 1):  # first one is a warm-up
                x, dt = timed(lambda: step(model, x, c, pos + i), device)
                ts.append(dt)
            return ts[1:]

        b1_end = synth_steps(1, end)
        b8_start = synth_steps(8, plen)
        b8_end = synth_steps(8, end)
    med = lambda v: sorted(v)[len(v) // 2]
    b1_start_step = med(steps[1:] or steps)  # the first step after a prefill can be slower
    if full:
        decode_s = sum(steps)
    else:
        # Extrapolated: T steps at the mean of the measured start and end step times (exact
        # when the step time is linear in the position, which attention makes it).
        decode_s = (decode_tokens - 1) * (b1_start_step + med(b1_end)) / 2
    b8_step = (med(b8_start) + med(b8_end)) / 2
    return {
        "mode": mode, "decoder_input_tokens": n_img, "prompt_tokens": plen, "tiles": nloc[0] if local is not None else 0,
        "image_processor_s": t_proc, "encoder_s": t_enc, "prefill_s": t_pre,
        "ttft_s": t_enc + t_pre,
        "decode_step_s_b1": {"start": b1_start_step, "end": med(b1_end), "positions": [plen, end]},
        "decode_step_s_b8": {"start": med(b8_start), "end": med(b8_end)},
        "decode_tokens_per_s_b1": 1 / ((b1_start_step + med(b1_end)) / 2),
        "decode_tokens_per_s_b8": 8 / b8_step,
        "decode_page_s": decode_s, "decode_measured_steps": len(steps) + 1,
        "decode_page_extrapolated": not full,
    }
