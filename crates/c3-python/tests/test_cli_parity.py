"""The bindings equal the `c3` CLI token for token (C3_BIN; scripts/test.sh runs
these after the workspace tests built target/debug/c3)."""

import json
import subprocess

import numpy as np

import safetensors_file as stf

# Fields that measure time, not output.
TIMING = {"encode_seconds", "decode_seconds", "decode_tokens_per_second"}


def cli(c3_bin, *args, stdin=None):
    return subprocess.run([c3_bin, *args], input=stdin, capture_output=True, check=False)


def test_roundtrip_equals_cli(rt, export_dir, docs, long_text, c3_bin, tmp_path):
    for i, text in enumerate([docs[0], docs[2], long_text]):
        f = tmp_path / f"doc{i}.txt"
        f.write_text(text)
        out = cli(c3_bin, "roundtrip", "--model", str(export_dir), str(f), "--json")
        assert out.returncode == 0, out.stderr.decode()
        want = json.loads(out.stdout)
        got = rt.roundtrip(text)
        assert set(got) == set(want)
        for key in set(want) - TIMING:
            assert got[key] == want[key], key


def test_max_new_tokens_equals_cli(rt, export_dir, docs, c3_bin, tmp_path):
    f = tmp_path / "doc.txt"
    f.write_text(docs[3])
    out = cli(c3_bin, "roundtrip", "--model", str(export_dir), str(f), "--json",
              "--max-new-tokens", "7", "--no-repeat-ngram-size", "3")
    want = json.loads(out.stdout)
    got = rt.roundtrip(docs[3], max_new_tokens=7, no_repeat_ngram_size=3)
    assert (got["output_ids"], got["windows"]) == (want["output_ids"], want["windows"])


def test_prompt_equals_cli(rt, export_dir, docs, c3_bin, tmp_path):
    """A call's own prompt reaches the decoder as `c3 roundtrip --prompt` gives it,
    in roundtrip, stream and decompress."""
    ask = "Summarize the text: "
    f = tmp_path / "doc.txt"
    f.write_text(docs[2])
    out = cli(c3_bin, "roundtrip", "--model", str(export_dir), str(f), "--json",
              "--prompt", ask, "--max-new-tokens", "9")
    want = json.loads(out.stdout)
    got = rt.roundtrip(docs[2], max_new_tokens=9, prompt=ask)
    assert got["output_ids"] == want["output_ids"]
    assert got["output_ids"] != rt.roundtrip(docs[2], max_new_tokens=9)["output_ids"]
    stream = rt.stream(docs[2], max_new_tokens=9, prompt=ask)
    assert "".join(stream) == want["text"]
    assert rt.decompress(rt.compress([docs[2]]), max_new_tokens=9, prompt=ask) == [want["text"]]


def test_compress_equals_cli(rt, export_dir, docs, c3_bin, tmp_path):
    """Byte for byte the file `c3 compress` writes (both come from
    c3_runtime::latent_file, which writes its header in a fixed order)."""
    files = []
    for i, d in enumerate(docs):
        files.append(tmp_path / f"d{i}.txt")
        files[-1].write_text(d)
    out_file = tmp_path / "cli.safetensors"
    out = cli(c3_bin, "compress", "--model", str(export_dir), *map(str, files), "-o", str(out_file))
    assert out.returncode == 0, out.stderr.decode()
    want = out_file.read_bytes()
    got = rt.compress(docs, sources=[str(f) for f in files])
    assert stf.parse(got) == stf.parse(want)  # the readable diff, if any
    np.testing.assert_array_equal(stf.latents(got), stf.latents(want))
    assert got == want
    # One document from stdin, which the CLI names `-`.
    out = cli(c3_bin, "compress", "--model", str(export_dir), "-", "-o", str(out_file),
              "--force", stdin=docs[1].encode())
    assert rt.compress([docs[1]], sources=["-"]) == out_file.read_bytes()


def test_decompress_reads_the_cli_file(rt, export_dir, docs, c3_bin, tmp_path):
    f = tmp_path / "doc.txt"
    f.write_text(docs[4])
    lat = tmp_path / "doc.safetensors"
    assert cli(c3_bin, "compress", "--model", str(export_dir), str(f), "-o", str(lat)).returncode == 0
    out = cli(c3_bin, "decompress", "--model", str(export_dir), str(lat), "--json")
    want = [d["text"] for d in json.loads(out.stdout)]
    assert rt.decompress(lat.read_bytes()) == want


def test_error_messages_equal_the_cli(export_dir, c3_bin, tmp_path):
    """The same one line as the CLI's `error:` line."""
    import c3

    missing = tmp_path / "no-such-export"
    f = tmp_path / "doc.txt"
    f.write_text("Some text.")
    out = cli(c3_bin, "roundtrip", "--model", str(missing), str(f))
    line = out.stderr.decode().strip().splitlines()[-1]
    assert line.startswith("error: ")
    try:
        c3.Runtime(missing)
    except c3.C3Error as e:
        assert str(e) == line[len("error: "):]
    else:
        raise AssertionError("no error")

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    out = cli(c3_bin, "decompress", "--model", str(export_dir), str(garbage))
    line = out.stderr.decode().strip().splitlines()[-1]
    rt = c3.Runtime(export_dir)
    try:
        rt.decompress(garbage.read_bytes())
    except c3.InputError as e:
        # The CLI names the file; the bytes have no name.
        assert line == "error: " + str(e).replace("latent file:", f"latent file {garbage}:", 1)
    else:
        raise AssertionError("no error")
