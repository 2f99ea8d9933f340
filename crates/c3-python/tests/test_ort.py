"""Where ONNX Runtime is found (docs/python.md). Each case runs in a fresh
interpreter: a process loads one library, once."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT

DEPS_LIB = ROOT / ".deps" / "onnxruntime" / "lib" / "libonnxruntime.so.1.31.1"


def run(code, env=None, cwd=None):
    full = dict(os.environ)
    full.pop("ORT_DYLIB_PATH", None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=full, cwd=cwd,
    )


def test_ort_dylib_path_is_the_only_place(export_dir, tmp_path):
    missing = tmp_path / "libonnxruntime.so"
    out = run(f"""
        import c3
        assert c3.ort_library() == {str(missing)!r}, c3.ort_library()
        try:
            c3.Runtime({str(export_dir)!r})
        except c3.LoadError as e:
            print(e)
        """, env={"ORT_DYLIB_PATH": str(missing)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(missing) in out.stdout and "ORT_DYLIB_PATH" in out.stdout, out.stdout
    assert "beside the c3 module" not in out.stdout, "a named library is the only place"


@pytest.mark.skipif(not DEPS_LIB.exists(), reason="scripts/install-deps.sh not run")
def test_the_onnxruntime_python_package_is_found(export_dir, tmp_path):
    """`pip install onnxruntime` puts the library in onnxruntime/capi/: a stand-in
    package with the library there (never imported) is where it is loaded from."""
    capi = tmp_path / "site" / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    (capi.parent / "__init__.py").write_text("raise ImportError('never imported')\n")
    (capi / DEPS_LIB.name).symlink_to(DEPS_LIB)
    out = run(f"""
        import c3
        print(c3.ort_library())
        rt = c3.Runtime({str(export_dir)!r})
        print(rt.roundtrip("The cgroup freezer stops tasks.")["text"])
        print(c3.ort_library())
        """, env={"PYTHONPATH": str(tmp_path / "site")}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == lines[2] == str(capi / DEPS_LIB.name), lines
    assert "freezer" in lines[1]


@pytest.mark.skipif(not DEPS_LIB.exists(), reason="scripts/install-deps.sh not run")
def test_ort_lib_argument_and_a_second_library(export_dir, tmp_path):
    out = run(f"""
        import c3
        rt = c3.Runtime({str(export_dir)!r}, ort_lib={str(DEPS_LIB)!r})
        assert c3.ort_library() == {str(DEPS_LIB)!r}
        # The same library again is fine; another one cannot replace it.
        c3.Runtime({str(export_dir)!r}, ort_lib={str(DEPS_LIB)!r})
        try:
            c3.Runtime({str(export_dir)!r}, ort_lib="/elsewhere/libonnxruntime.so")
        except c3.LoadError as e:
            print(e)
        """, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "already loaded from" in out.stdout, out.stdout
