"""A real tritonserver (scripts/triton.sh on a free loopback port) serving the
exported default model: concurrent requests equal the serial `c3` CLI token for
token, compress/decompress equal `c3 compress`/`c3 decompress`, hostile inputs get
a Triton error with the runtime's one line and the server stays ready."""

import json
import struct
import subprocess
import time

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import MODELS
from inputs import bytes_input, int_input, text_input

# Fields that measure time, not output.
TIMING = {"encode_seconds", "decode_seconds", "decode_tokens_per_second"}


def cli(c3_bin, *args, stdin=None):
    done = subprocess.run([c3_bin, *args], input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout



def roundtrip_inputs(text, max_new_tokens=None):
    inputs = [text_input([text])]
    if max_new_tokens is not None:
        inputs.append(int_input("MAX_NEW_TOKENS", max_new_tokens))
    return inputs


def strings(result, name="TEXT"):
    return [b.decode() for b in result.as_numpy(name).reshape(-1)]


def safetensors(data):
    """(header, tensor bytes) of a safetensors file."""
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def cli_roundtrip(c3_bin, export_dir, tmp_path, text, *flags):
    f = tmp_path / f"doc-{abs(hash((text, flags)))}.txt"
    f.write_text(text)
    return json.loads(cli(c3_bin, "roundtrip", "--model", str(export_dir), str(f), "--json", *flags))


def assert_same_roundtrip(got_text, got_summary, want):
    assert got_text == want["text"]
    assert got_summary["output_ids"] == want["output_ids"]
    assert set(got_summary) == set(want)
    for key in set(want) - TIMING - {"backend"}:
        assert got_summary[key] == want[key], key


def test_server_and_models_are_ready(server, client):
    assert client.is_server_live() and client.is_server_ready()
    for name in MODELS:
        assert client.is_model_ready(name), name
    # The server's view of the config is the generated one.
    config = client.get_model_config("c3_roundtrip")
    assert config["max_batch_size"] == 0
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
        ("TEXT", "TYPE_STRING", [1]),
        ("MAX_NEW_TOKENS", "TYPE_INT32", [1]),
        ("PROMPT", "TYPE_STRING", [1]),
    ]


def test_16_concurrent_roundtrips_equal_serial_cli(server, client, c3_bin, export_dir, docs, tmp_path):
    # Serial `c3 roundtrip --json`, one process per document.
    want = [cli_roundtrip(c3_bin, export_dir, tmp_path, d) for d in docs]
    t0 = time.monotonic()
    pending = [client.async_infer("c3_roundtrip", roundtrip_inputs(d)) for d in docs]
    results = [p.get_result() for p in pending]
    seconds = time.monotonic() - t0
    windows = sum(w["n_windows"] for w in want)
    print(f"16 concurrent c3_roundtrip requests ({windows} windows) in {seconds:.2f} s")
    for d, r, w in zip(docs, results, want):
        [text] = strings(r)
        [summary] = strings(r, "SUMMARY")
        assert_same_roundtrip(text, json.loads(summary), w)
    assert sum(w["char_precision"] for w in want) / len(want) > 0.9


def test_max_new_tokens_equals_cli(client, c3_bin, export_dir, docs, tmp_path):
    want = cli_roundtrip(c3_bin, export_dir, tmp_path, docs[3], "--max-new-tokens", "7")
    r = client.infer("c3_roundtrip", roundtrip_inputs(docs[3], 7))
    assert_same_roundtrip(strings(r)[0], json.loads(strings(r, "SUMMARY")[0]), want)


def test_prompt_equals_cli(client, c3_bin, export_dir, docs, tmp_path):
    # A request's own prompt reaches the decoder as `c3 roundtrip --prompt` gives it.
    ask = "Summarize the text: "
    want = cli_roundtrip(c3_bin, export_dir, tmp_path, docs[2], "--prompt", ask, "--max-new-tokens", "9")
    inputs = roundtrip_inputs(docs[2], 9) + [text_input([ask], "PROMPT")]
    r = client.infer("c3_roundtrip", inputs)
    assert_same_roundtrip(strings(r)[0], json.loads(strings(r, "SUMMARY")[0]), want)
    plain = cli_roundtrip(c3_bin, export_dir, tmp_path, docs[2], "--max-new-tokens", "9")
    assert want["output_ids"] != plain["output_ids"]


def test_compress_equals_cli_and_decompress_round_trips(client, c3_bin, export_dir, docs, tmp_path):
    # One document. The CLI names a document read from stdin `-`; the bindings (and
    # c3-serve) name unnamed documents by index: everything else is the same.
    latents = client.infer("c3_compress", [text_input([docs[0]])]).as_numpy("LATENT_FILE")
    assert latents.dtype == np.uint8 and latents.ndim == 1
    cli_file = tmp_path / "one.safetensors"
    cli(c3_bin, "compress", "--model", str(export_dir), "-", "-o", str(cli_file), stdin=docs[0].encode())
    got, want = safetensors(latents.tobytes()), safetensors(cli_file.read_bytes())
    assert got[0]["__metadata__"].pop("c3.sources") == '["0"]'
    assert want[0]["__metadata__"].pop("c3.sources") == '["-"]'
    assert got == want

    # Several documents in one file, concurrently with round trips of the same texts.
    three = [docs[1], docs[3], docs[6]]
    compress = client.async_infer("c3_compress", [text_input(three)])
    trips = [client.async_infer("c3_roundtrip", roundtrip_inputs(d)) for d in three]
    data = compress.get_result().as_numpy("LATENT_FILE").tobytes()
    trip_texts = [strings(t.get_result())[0] for t in trips]
    lat = tmp_path / "three.safetensors"
    lat.write_bytes(data)
    want = [d["text"] for d in json.loads(cli(c3_bin, "decompress", "--model", str(export_dir), str(lat), "--json"))]
    got = strings(client.infer("c3_decompress", [bytes_input(data)]))
    assert got == want == trip_texts
    # MAX_NEW_TOKENS reaches decompress too.
    want7 = [d["text"] for d in json.loads(cli(
        c3_bin, "decompress", "--model", str(export_dir), str(lat), "--json", "--max-new-tokens", "5"))]
    got7 = strings(client.infer("c3_decompress", [bytes_input(data), int_input("MAX_NEW_TOKENS", 5)]))
    assert got7 == want7 != want


HOSTILE = [
    ("empty text", "c3_roundtrip", lambda v: [text_input([""])], "the text is empty"),
    ("whitespace only", "c3_roundtrip", lambda v: [text_input(["  \n "])], "empty"),
    ("non-UTF-8 text", "c3_roundtrip", lambda v: [text_input([b"ok \xff\xfe"])], "TEXT[0] is not valid UTF-8"),
    ("MAX_NEW_TOKENS 0", "c3_roundtrip", lambda v: roundtrip_inputs("Some text.", 0),
     "MAX_NEW_TOKENS must be at least 1"),
    ("MAX_NEW_TOKENS < 0", "c3_roundtrip", lambda v: roundtrip_inputs("Some text.", -3),
     "MAX_NEW_TOKENS must be at least 1"),
    ("empty PROMPT", "c3_roundtrip", lambda v: roundtrip_inputs("Some text.") + [text_input([" "], "PROMPT")],
     "the prompt is empty"),
    ("no texts", "c3_compress", lambda v: [text_input([])], "no texts given"),
    ("one empty text of two", "c3_compress", lambda v: [text_input(["Fine.", ""])], "text 1"),
    ("garbage latent file", "c3_decompress", lambda v: [bytes_input(b"\x00garbage" * 100)], "latent file"),
    ("empty latent file", "c3_decompress", lambda v: [bytes_input(b"")], "latent file"),
    ("truncated latent file", "c3_decompress", lambda v: [bytes_input(v[: len(v) // 2])], "latent file"),
    ("header bomb", "c3_decompress", lambda v: [bytes_input(struct.pack("<Q", 1 << 60) + b"{}")],
     "latent file"),
]


@pytest.fixture(scope="module")
def valid_latents(client, docs):
    return client.infer("c3_compress", [text_input([docs[2]])]).as_numpy("LATENT_FILE").tobytes()


@pytest.mark.parametrize("case", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_a_triton_error_and_the_server_stays_ready(server, client, valid_latents, case):
    _, model, inputs, msg = case
    with pytest.raises(InferenceServerException) as e:
        client.infer(model, inputs(valid_latents))
    assert msg in e.value.message(), e.value.message()
    assert "\n" not in e.value.message()
    assert e.value.status() == "400", (e.value.status(), e.value.message())
    assert server.proc.poll() is None, server.log_tail()
    assert client.is_server_ready() and client.is_model_ready(model)


def test_wrong_tensors_are_refused_by_triton(client):
    wrong_type = httpclient.InferInput("TEXT", [1], "INT32")
    wrong_type.set_data_from_numpy(np.array([1], dtype=np.int32))
    for model, inputs in [
        ("c3_roundtrip", [wrong_type]),
        ("c3_roundtrip", [text_input(["a", "b"])]),  # dims [1]
        ("c3_roundtrip", [text_input(["a"], name="PROMPT")]),
        ("c3_decompress", []),
    ]:
        with pytest.raises(InferenceServerException):
            client.infer(model, inputs)
    assert client.is_server_ready()


def test_after_the_hostile_inputs_requests_still_succeed(server, client, c3_bin, export_dir, docs, tmp_path):
    want = cli_roundtrip(c3_bin, export_dir, tmp_path, docs[5])
    pending = [client.async_infer("c3_roundtrip", roundtrip_inputs(docs[5])) for _ in range(4)]
    for p in pending:
        assert strings(p.get_result()) == [want["text"]]
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log_tail()


def test_grpc_gives_the_same_answers_and_errors(server, client, docs):
    import tritonclient.grpc as grpcclient

    g = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port + 1}")
    i = grpcclient.InferInput("TEXT", [1], "BYTES")
    i.set_data_from_numpy(np.array([docs[7].encode()], dtype=np.object_))
    got = g.infer("c3_roundtrip", [i]).as_numpy("TEXT")[0].decode()
    assert got == strings(client.infer("c3_roundtrip", roundtrip_inputs(docs[7])))[0]
    i.set_data_from_numpy(np.array([b""], dtype=np.object_))
    with pytest.raises(InferenceServerException) as e:
        g.infer("c3_roundtrip", [i])
    assert e.value.message() == "the text is empty"
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    g.close()
