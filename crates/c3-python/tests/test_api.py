"""The bindings' API on the exported default model: attributes, compress /
decompress / roundtrip agreeing with each other, numpy latents, streaming, the
installed wheel itself."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import c3
import safetensors_file as stf
from conftest import ROOT, have


def test_attributes(rt, export_dir):
    assert rt.n_latents == 8 and rt.hidden == 128 and rt.window == 40
    manifest = (export_dir / "c3-export.json").read_bytes()
    assert rt.manifest_sha256 == hashlib.sha256(manifest).hexdigest()
    assert Path(rt.export_dir) == export_dir
    assert rt.provider == "cpu" and rt.max_batch == 6 and rt.max_queue == 64
    assert "c3.Runtime(" in repr(rt)


def test_roundtrip_fields(rt, docs):
    r = rt.roundtrip(docs[2])
    for key in ["text", "output_ids", "text_tokens", "latent_tokens", "compression",
                "char_precision", "word_precision", "windows", "finish_reason"]:
        assert key in r, key
    assert r["n_windows"] == len(r["windows"]) > 1
    assert r["latent_tokens"] == 8 * r["n_windows"]
    assert r["compression"] == pytest.approx(r["text_tokens"] / r["latent_tokens"])
    # The shipped model reconstructs its demo page almost exactly.
    assert r["char_precision"] > 0.9, r["text"]


def test_roundtrip_equals_decompress_of_compress(rt, docs):
    """One document or many, whatever shares the batch: the same texts."""
    serial = [rt.roundtrip(d)["text"] for d in docs]
    assert rt.decompress(rt.compress(docs)) == serial
    for d, want in zip(docs, serial):
        assert rt.decompress(rt.compress([d])) == [want]


def test_max_new_tokens_caps_every_window(rt, docs):
    r = rt.roundtrip(docs[2], max_new_tokens=5)
    assert all(w["generated"] <= 5 for w in r["windows"])
    assert r["finish_reason"] == "length"
    assert rt.decompress(rt.compress([docs[2]]), max_new_tokens=5) == [r["text"]]


def test_compress_file_layout(rt, docs):
    data = rt.compress(docs[:3], sources=["a.txt", "b.txt", "c.txt"])
    header, _ = stf.parse(data)
    meta = header["__metadata__"]
    assert meta["c3.export_manifest_sha256"] == rt.manifest_sha256
    assert json.loads(meta["c3.sources"]) == ["a.txt", "b.txt", "c.txt"]
    # Unnamed documents are named by their index, as c3-serve's /v1/compress does.
    header, _ = stf.parse(rt.compress(docs[:2]))
    assert json.loads(header["__metadata__"]["c3.sources"]) == ["0", "1"]
    with pytest.raises(c3.InputError, match="^1 sources for 2 texts$"):
        rt.compress(docs[:2], sources=["a"])


def test_latents_are_the_files_values(rt, docs):
    arrays = rt.latents(docs)
    assert len(arrays) == len(docs)
    for a in arrays:
        assert isinstance(a, np.ndarray) and a.dtype == np.float32
        assert a.shape[1:] == (rt.n_latents, rt.hidden) and a.shape[0] >= 1
        assert np.isfinite(a).all()
    stored = stf.latents(rt.compress(docs))
    np.testing.assert_array_equal(np.concatenate(arrays), stored)
    # A document's latents do not depend on what else is compressed with it.
    np.testing.assert_array_equal(rt.latents([docs[3]])[0], arrays[3])


def test_stream_pieces_join_to_the_roundtrip_text(rt, docs, long_text):
    for text in [docs[0], docs[4], long_text]:
        want = rt.roundtrip(text)
        s = rt.stream(text)
        assert s.summary is None
        pieces = list(s)
        assert "".join(pieces) == want["text"]
        assert all(pieces)
        if want["n_windows"] > 2:
            assert len(pieces) > want["n_windows"], "streamed, not one piece per window"
        timing = {"encode_seconds", "decode_seconds", "decode_tokens_per_second"}
        assert {k: v for k, v in s.summary.items() if k not in timing} == {
            k: v for k, v in want.items() if k not in timing
        }


def test_a_dropped_stream_frees_its_rows(rt, long_text):
    s = rt.stream(long_text)
    next(s)
    del s
    # The cancelled request leaves; later requests run and the gauges drain.
    assert rt.roundtrip("The cgroup freezer stops tasks.")["text"]
    stats = rt.stats()
    assert stats["queued"] == 0 and stats["running"] == 0, stats


def test_close_ends_the_runtime(export_dir):
    with c3.Runtime(export_dir) as r:
        assert r.roundtrip("A short text.")["text"]
    with pytest.raises(c3.C3RuntimeError, match="closed"):
        r.roundtrip("A short text.")


def test_installed_wheel_is_abi3_and_links_neither_libpython_nor_libtorch():
    """The suite runs on the wheel installed in a fresh venv, not the source tree."""
    module = Path(c3._c3.__file__)
    assert Path(sys.prefix) in module.parents, module
    assert module.name.endswith(".abi3.so"), module.name
    if have("ldd"):
        libs = subprocess.run(["ldd", str(module)], capture_output=True, text=True).stdout
        assert "libpython" not in libs and "libtorch" not in libs, libs


@pytest.mark.skipif(not have("cargo"), reason="no cargo")
def test_dependency_tree_has_no_tch():
    tree = subprocess.run(
        ["cargo", "tree", "--offline", "-p", "c3-python", "-e", "normal", "--prefix", "none"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert "c3-runtime" in tree
    assert not [l for l in tree.splitlines() if l.startswith(("tch ", "torch-sys "))], tree
