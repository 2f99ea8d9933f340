"""A latent file's parts, read the way the safetensors format defines them
(8-byte little-endian header length, JSON header, raw tensor bytes), so tests can
compare files whose JSON key order differs."""

import json
import struct

import numpy as np


def parse(data: bytes):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return header, data[8 + n :]


def latents(data: bytes) -> np.ndarray:
    header, body = parse(data)
    info = header["latents"]
    start, end = info["data_offsets"]
    assert info["dtype"] == "F32"
    return np.frombuffer(body[start:end], dtype="<f4").reshape(info["shape"])


def build(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body
