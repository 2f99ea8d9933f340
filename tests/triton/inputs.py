"""Input tensors of the c3 Triton models for tritonclient.http, shared by the tests,
the benchmark and the soak."""

import numpy as np
import tritonclient.http as httpclient


def text_input(texts, name="TEXT"):
    data = np.array([t if isinstance(t, bytes) else t.encode() for t in texts], dtype=np.object_)
    i = httpclient.InferInput(name, [len(texts)], "BYTES")
    i.set_data_from_numpy(data)
    return i


def int_input(name, value):
    i = httpclient.InferInput(name, [1], "INT32")
    i.set_data_from_numpy(np.array([value], dtype=np.int32))
    return i


def bytes_input(data, name="LATENT_FILE"):
    i = httpclient.InferInput(name, [len(data)], "UINT8")
    i.set_data_from_numpy(np.frombuffer(data, dtype=np.uint8))
    return i
