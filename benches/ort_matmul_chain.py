#!/usr/bin/env python3
"""The matmuls of a Qwen2.5-0.5B-shaped decoder alone, for M prompt positions (issue 15).

Builds a graph of only the 24 layers' projections (q, k, v, o, gate, up, down, each
layer with its own random fp32 weights, so they stream from memory as a real
decoder's do; a Mul and two Adds keep the data flowing) and times one run in ONNX
Runtime on 2 threads: the floor for a prefill of M positions that any graph built
from these MatMuls can reach. With --fused, q/k/v are one MatMul and gate/up
another, each followed by a Split.

Usage: python benches/ort_matmul_chain.py M [--fused]
Needs: onnxruntime, onnx and numpy (1.31.1 / 1.23.2 were used for BENCHMARKS.md).
"""
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

H, I, KV, LAYERS = 896, 4864, 128, 24


def build(fused):
    rng = np.random.RandomState(0)
    nodes, inits, outs = [], [], []

    def weight(name, k, n):
        inits.append(numpy_helper.from_array((rng.randn(k, n) * 0.02).astype(np.float32), name))
        return name

    def mm(a, w, out):
        nodes.append(helper.make_node("MatMul", [a, w], [out]))

    x = "x"
    for l in range(LAYERS):
        if fused:
            mm(x, weight(f"qkv_w{l}", H, H + 2 * KV), f"qkv{l}")
            nodes.append(helper.make_node("Split", [f"qkv{l}", "split_qkv"], [f"q{l}", f"k{l}", f"v{l}"], axis=-1))
            mm(x, weight(f"gu_w{l}", H, 2 * I), f"gu{l}")
            nodes.append(helper.make_node("Split", [f"gu{l}", "split_gu"], [f"g{l}", f"u{l}"], axis=-1))
        else:
            for name, n in [("q", H), ("k", KV), ("v", KV), ("g", I), ("u", I)]:
                mm(x, weight(f"{name}_w{l}", H, n), f"{name}{l}")
        nodes.append(helper.make_node("Mul", [f"g{l}", f"u{l}"], [f"a{l}"]))
        mm(f"a{l}", weight(f"d_w{l}", I, H), f"d{l}")
        mm(f"q{l}", weight(f"o_w{l}", H, H), f"o{l}")
        nodes.append(helper.make_node("Add", [f"d{l}", f"o{l}"], [f"s{l}"]))
        nodes.append(helper.make_node("Add", [x, f"s{l}"], [f"x{l}"]))
        outs += [f"k{l}", f"v{l}"]
        x = f"x{l}"
    if fused:
        inits.append(numpy_helper.from_array(np.array([H, KV, KV], np.int64), "split_qkv"))
        inits.append(numpy_helper.from_array(np.array([I, I], np.int64), "split_gu"))
    value = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
    graph = helper.make_graph(
        nodes, "matmul_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, H])],
        [value(x)] + [value(o) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--fused"):
        sys.exit(__doc__)
    m, fused = int(sys.argv[1]), len(sys.argv) == 3
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/chain.onnx"
        onnx.save(build(fused), path, save_as_external_data=True, location="chain.onnx.data")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    a = (np.random.RandomState(1).randn(1, m, H) * 0.1).astype(np.float32)
    for _ in range(3):
        s.run(None, {"x": a})
    ts = []
    for _ in range(15):
        t = time.perf_counter()
        s.run(None, {"x": a})
        ts.append(time.perf_counter() - t)
    ms = sorted(ts)[7] * 1e3
    flops = 2 * m * LAYERS * H * (2 * H + 2 * KV + 3 * I)
    print(f"M={m} {'fused q/k/v and gate/up' if fused else 'one MatMul per projection'}: "
          f"median {ms:.1f} ms, {flops / ms / 1e6:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
