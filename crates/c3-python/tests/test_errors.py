"""Bad inputs raise c3 exceptions with the runtime's one-line messages; the
runtime keeps serving afterwards."""

import json

import pytest

import c3
import safetensors_file as stf


def raises(cls, match):
    return pytest.raises(cls, match=match)


def test_exception_classes():
    assert issubclass(c3.InputError, c3.C3Error) and issubclass(c3.InputError, ValueError)
    assert issubclass(c3.C3RuntimeError, RuntimeError)
    assert issubclass(c3.LoadError, c3.C3RuntimeError)
    assert issubclass(c3.QueueFullError, c3.C3RuntimeError)


def test_empty_text(rt):
    for call in [rt.roundtrip, rt.stream]:
        with raises(c3.InputError, "^the text is empty$"):
            call("")
        with raises(ValueError, "^the text is empty$"):
            call(" \n\t ")
    with raises(c3.InputError, "^text 1: the text is empty$"):
        rt.compress(["fine", ""])
    with raises(c3.InputError, "^text 0: the text is empty$"):
        rt.latents([""])
    with raises(c3.InputError, "^no texts given$"):
        rt.compress([])


def test_a_str_is_not_a_list_of_texts(rt):
    with raises(TypeError, "list of str"):
        rt.compress("one text")


def test_garbage_latent_files(rt, docs):
    good = rt.compress([docs[1]])
    with raises(c3.InputError, r"^latent file: not a latent file \(safetensors\)"):
        rt.decompress(b"garbage")
    with raises(c3.InputError, "^latent file: "):
        rt.decompress(good[: len(good) // 2])  # truncated
    header, body = stf.parse(good)
    other = dict(header, __metadata__=dict(header["__metadata__"]))
    other["__metadata__"]["c3.export_manifest_sha256"] = "0" * 64
    with raises(c3.InputError, "^latent file: .*export"):
        rt.decompress(stf.build(other, body))
    nan = bytearray(body)
    nan[0:4] = b"\x00\x00\xc0\x7f"  # a NaN latent
    with raises(c3.InputError, "^latent file: "):
        rt.decompress(stf.build(header, bytes(nan)))
    bomb = dict(header, __metadata__=dict(header["__metadata__"]))
    bomb["__metadata__"]["c3.windows"] = json.dumps([{"doc": 0, "start": 0, "tokens": 10**9, "skip": 0, "pad": 0}])
    with raises(c3.InputError, "^latent file: "):
        rt.decompress(stf.build(bomb, body))
    # Still serving.
    assert rt.decompress(good) == [rt.roundtrip(docs[1])["text"]]


def test_bad_arguments(rt, export_dir):
    with raises(c3.InputError, "^max_new_tokens must be at least 1$"):
        rt.roundtrip("text", max_new_tokens=0)
    with pytest.raises(OverflowError):
        rt.roundtrip("text", max_new_tokens=-1)
    with raises(c3.InputError, "^prompt: the prompt is empty$"):
        rt.roundtrip("text", prompt="  ")
    with raises(c3.InputError, "unknown execution provider `tpu`"):
        c3.Runtime(export_dir, provider="tpu")
    with raises(c3.InputError, r"window of 0 tokens: must be in 1\.\."):
        c3.Runtime(export_dir, window=0)
    with raises(c3.InputError, "max_batch, max_queue and admit_per_step must be at least 1"):
        c3.Runtime(export_dir, max_batch=0)
    # Not the caller's input: this export cannot run on that provider (checked
    # before any session, so no GPU is needed to see it).
    with raises(c3.LoadError, "cannot run on cuda"):
        c3.Runtime(export_dir, provider="cuda")


def test_missing_export_dir(tmp_path):
    """A folder that is not there, or holds no export, is the caller's mistake (as
    the runtime classes it)."""
    missing = tmp_path / "nowhere"
    with raises(c3.InputError, f"^export folder {missing} does not exist"):
        c3.Runtime(missing)
    not_export = tmp_path / "empty"
    not_export.mkdir()
    with raises(c3.InputError, "c3-export.json: cannot read the export manifest"):
        c3.Runtime(not_export)
    (not_export / "c3-export.json").write_text("{}")
    with pytest.raises(c3.C3Error, match="c3-export.json"):
        c3.Runtime(not_export)


def test_a_damaged_export(export_dir, tmp_path):
    """A file whose hash the manifest does not record is refused before anything
    loads; the runtime counts the export folder given as the caller's input (a
    LoadError is for what the runtime itself cannot load: ONNX Runtime, a session,
    a provider; see test_ort.py)."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(export_dir, damaged)
    with open(damaged / "tokenizer.json", "a") as f:
        f.write(" ")
    with raises(c3.InputError, "tokenizer.json: sha256 differs from the manifest's"):
        c3.Runtime(damaged)
