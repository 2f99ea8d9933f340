#!/usr/bin/env python3
"""Where a request's prefill time goes, by ONNX Runtime op type (issue 15).

Runs an export's `decoder.onnx` (a shared_buffer export taking `input_ids` and
`inputs_embeds`) the way a request's prefill does after the prompt-prefix cache:
N latent embeddings plus the prompt's suffix ids in one run, onto a cache of the
prompt's length, with ONNX Runtime's profiler on; prints the median run and each
op type's share of kernel time.

Usage: python benches/ort_prefill_profile.py EXPORT_DIR
Needs: onnxruntime and numpy (the repo pins none; 1.31.1 was used for BENCHMARKS.md).
"""
import collections
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    export = sys.argv[1]
    manifest = json.load(open(os.path.join(export, "c3-export.json")))
    prompt = manifest["prompt"]
    plen, start, n = len(prompt["ids"]), prompt["latent_start"], manifest["n_latents"]
    suffix = prompt["ids"][start + n:]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.enable_profiling = True
    s = ort.InferenceSession(os.path.join(export, "decoder.onnx"), so, providers=["CPUExecutionProvider"])
    names = {i.name: i for i in s.get_inputs()}
    if "input_ids" not in names or "seqlens_k" not in names:
        sys.exit("needs a shared_buffer export whose decoder takes input_ids")
    hidden = names["inputs_embeds"].shape[2]
    feed = {
        "input_ids": np.array([suffix], np.int64),
        "inputs_embeds": (np.random.RandomState(0).randn(1, n, hidden) * 0.1).astype(np.float32),
        "seqlens_k": np.array([plen - 1], np.int32),
        "total_sequence_length": np.array(plen, np.int32),
    }
    for name, i in names.items():
        if name.startswith("past_key_values."):
            feed[name] = np.zeros((1, i.shape[1], plen, i.shape[3]), np.float32)
    warm, timed = 3, 10
    for _ in range(warm):
        s.run(None, feed)
    ts = []
    for _ in range(timed):
        t = time.perf_counter()
        s.run(None, feed)
        ts.append(time.perf_counter() - t)
    print(f"{n} latents + {len(suffix)} suffix ids onto a {plen}-position cache: "
          f"median run {sorted(ts)[timed // 2] * 1e3:.1f} ms")
    profile = s.end_profiling()
    events = json.load(open(profile))
    os.remove(profile)
    per_op, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
            count[e["args"]["op_name"]] += 1
    total, runs = sum(per_op.values()), warm + timed
    for op, us in per_op.most_common(12):
        print(f"{op:30s} {us / runs / 1e3:8.2f} ms/run {100 * us / total:5.1f}%  x{count[op] // runs}")


if __name__ == "__main__":
    main()
