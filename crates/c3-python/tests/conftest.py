"""Fixtures for the c3 Python binding tests: the shipped default model
(models/c3-tiny) exported once per session with the c3-export binary, and one
Runtime on it. Run by scripts/python.sh test (a fresh venv with the wheel)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEMO_PAGE = ROOT / "models" / "demo-page.txt"


def _bin(var, name):
    path = os.environ.get(var) or str(ROOT / "target" / "debug" / name)
    return path if Path(path).exists() else None


@pytest.fixture(scope="session")
def c3_bin():
    """The `c3` CLI to compare with: C3_BIN (scripts/test.sh sets it after the
    workspace tests built it). Missing: skipped, unless C3_REQUIRE_CLI=1."""
    path = os.environ.get("C3_BIN")
    if path and Path(path).exists():
        return path
    if os.environ.get("C3_REQUIRE_CLI") == "1":
        pytest.fail(f"C3_REQUIRE_CLI=1 but the c3 CLI is not at C3_BIN={path!r}")
    pytest.skip("no c3 CLI (set C3_BIN=target/debug/c3 to compare with it)")


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    exporter = _bin("C3_EXPORT_BIN", "c3-export")
    if exporter is None:
        pytest.fail("c3-export is not built: run `cargo build -p c3-export` or set C3_EXPORT_BIN")
    out = tmp_path_factory.mktemp("export") / "c3-tiny"
    subprocess.run(
        [exporter, str(ROOT / "models" / "c3-tiny"), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return out


@pytest.fixture(scope="session")
def rt(export_dir):
    import c3

    # A batch smaller than the tests' windows: rows wait for slots and join the
    # running batch at different steps.
    runtime = c3.Runtime(export_dir, max_batch=6, max_queue=64)
    yield runtime
    runtime.close()


def _paragraphs():
    text = DEMO_PAGE.read_text()
    return [p.strip() for p in text.split("\n\n") if p.strip()]


@pytest.fixture(scope="session")
def docs():
    """Texts of 1 to ~6 windows of 40 tokens: a short padded one, paragraphs whose
    last window overlaps the previous one, a heading."""
    paras = _paragraphs()
    return [
        "The cgroup freezer stops tasks.",
        paras[0],
        paras[1],
        paras[2],
        paras[1] + "\n\n" + paras[2],
        paras[3][:200],
    ]


@pytest.fixture(scope="session")
def long_text():
    return "\n\n".join(_paragraphs()[:6])


def have(cmd):
    return shutil.which(cmd) is not None
