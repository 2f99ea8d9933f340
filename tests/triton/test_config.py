"""Every generated config.pbtxt parses against Triton's own schema (tritonclient's
model_config_pb2.ModelConfig; unknown fields or wrong types fail the parse), with
the names, types and shapes docs/triton.md promises clients. No server needed."""

import subprocess

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from conftest import MODELS

T = mc.DataType

# name -> (inputs, outputs), each (name, data type, dims, optional).
CONTRACT = {
    "c3_roundtrip": (
        [("TEXT", T.TYPE_STRING, [1], False), ("MAX_NEW_TOKENS", T.TYPE_INT32, [1], True),
         ("PROMPT", T.TYPE_STRING, [1], True)],
        [("TEXT", T.TYPE_STRING, [1], False), ("SUMMARY", T.TYPE_STRING, [1], False)],
    ),
    "c3_compress": (
        [("TEXT", T.TYPE_STRING, [-1], False)],
        [("LATENT_FILE", T.TYPE_UINT8, [-1], False)],
    ),
    "c3_decompress": (
        [("LATENT_FILE", T.TYPE_UINT8, [-1], False), ("MAX_NEW_TOKENS", T.TYPE_INT32, [1], True),
         ("PROMPT", T.TYPE_STRING, [1], True)],
        [("TEXT", T.TYPE_STRING, [-1], False)],
    ),
}


def generate(c3_bin, export_dir, out, *flags):
    done = subprocess.run(
        [c3_bin, "triton", str(export_dir), "--out", str(out), *flags],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return out


def parse(path):
    config = mc.ModelConfig()
    text_format.Parse(path.read_text(), config)
    return config


@pytest.fixture(scope="module")
def repo(tmp_path_factory, c3_bin, export_dir):
    return generate(c3_bin, export_dir, tmp_path_factory.mktemp("repo") / "repo",
                    "--python-path", "/opt/c3 site", "--max-batch", "12", "--instances", "2")


def test_every_config_parses_against_tritons_schema(repo, export_dir):
    assert sorted(p.name for p in repo.iterdir() if p.is_dir()) == sorted(MODELS)
    for name in MODELS:
        config = parse(repo / name / "config.pbtxt")
        assert config.name == name
        assert config.backend == "python"
        assert config.max_batch_size == 0
        assert not config.HasField("dynamic_batching")
        assert not config.model_transaction_policy.decoupled
        inputs, outputs = CONTRACT[name]
        assert [(i.name, i.data_type, list(i.dims), i.optional) for i in config.input] == inputs
        assert [(o.name, o.data_type, list(o.dims), False) for o in config.output] == outputs
        [group] = config.instance_group
        assert (group.kind, group.count) == (mc.ModelInstanceGroup.KIND_CPU, 2)
        params = {k: v.string_value for k, v in config.parameters.items()}
        assert params == {
            "C3_TASK": name.removeprefix("c3_"),
            "EXPORT_DIR": str(export_dir.resolve()),
            "PROVIDER": "cpu",
            "MAX_BATCH": "12",
            "MAX_QUEUE": "64",
            "THREADS": "0",
        }
        # model.py is valid Python with the path written in.
        source = (repo / name / "1" / "model.py").read_text()
        compile(source, str(repo / name / "1" / "model.py"), "exec")
        assert 'C3_PYTHON_PATH = ["/opt/c3 site"]\n' in source


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_providers_parse_with_gpu_instances(tmp_path, c3_bin, export_dir, provider):
    repo = generate(c3_bin, export_dir, tmp_path / "repo", "--provider", provider)
    for name in MODELS:
        config = parse(repo / name / "config.pbtxt")
        assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
        assert config.parameters["PROVIDER"].string_value == provider


def test_copied_export_is_named_relative_to_the_model(tmp_path, c3_bin, export_dir):
    repo = generate(c3_bin, export_dir, tmp_path / "repo", "--copy-export")
    for name in MODELS:
        config = parse(repo / name / "config.pbtxt")
        assert config.parameters["EXPORT_DIR"].string_value == "export"
        assert (repo / name / "export" / "c3-export.json").read_bytes() == (
            export_dir / "c3-export.json"
        ).read_bytes()


def test_the_cli_refuses_bad_options_with_one_line(tmp_path, c3_bin, export_dir):
    for flags, msg in [
        (["--provider", "rocm"], "unknown execution provider `rocm`"),
        (["--instances", "0"], "--instances must be at least 1"),
    ]:
        done = subprocess.run(
            [c3_bin, "triton", str(export_dir), "--out", str(tmp_path / "r"), *flags],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 1
        err = done.stderr.decode()
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
