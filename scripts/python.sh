#!/usr/bin/env bash
# The Python bindings (`import c3`, crates/c3-python): build a wheel, or test one.
#
#   scripts/python.sh build [--debug]  wheel into target/wheels (release unless --debug)
#   scripts/python.sh test [PYTEST_ARGS...]
#       builds a debug wheel, installs it into a fresh venv (target/python-test-venv),
#       exports models/c3-tiny with c3-export and runs crates/c3-python/tests (pytest).
#       Set C3_BIN to a built `c3` CLI (scripts/test.sh passes target/debug/c3) to
#       also compare with `c3 roundtrip --json` / `c3 compress` token for token, and
#       C3_EXPORT_BIN to a built c3-export (else `cargo build -p c3-export`).
#
# maturin and the test tools come from PyPI, pinned, into git-ignored venvs:
# .venv-py/ (the build tool) and target/python-test-venv/ (recreated every test run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

MATURIN_VERSION=1.16.0
PYTEST_VERSION=9.2.0
NUMPY_VERSION=2.4.6
python="${PYTHON:-python3}"
build_venv="$root/.venv-py"
test_venv="$root/target/python-test-venv"
crate="crates/c3-python"

log() { printf '[python] %s\n' "$*" >&2; }

# The build venv with pinned maturin, made once.
build_tools() {
  if [[ ! -x "$build_venv/bin/maturin" ]] || [[ "$("$build_venv/bin/maturin" --version)" != "maturin $MATURIN_VERSION" ]]; then
    log "creating $build_venv with maturin==$MATURIN_VERSION"
    rm -rf "$build_venv"
    "$python" -m venv "$build_venv"
    "$build_venv/bin/pip" install --quiet --disable-pip-version-check "maturin==$MATURIN_VERSION"
  fi
}

# build PROFILE OUTDIR: one abi3 wheel (CPython >= 3.8) into OUTDIR; prints its path.
build_wheel() {
  local profile="$1" out="$2" flags=()
  [[ "$profile" == release ]] && flags+=(--release)
  build_tools
  rm -rf "$out"
  log "maturin build ${flags[*]:-(debug)} -> $out"
  nice -n 10 "$build_venv/bin/maturin" build "${flags[@]}" --quiet \
    --manifest-path "$crate/Cargo.toml" --interpreter "$(command -v "$python")" --out "$out" >&2
  ls "$out"/*.whl
}

case "${1:-}" in
  build)
    profile=release
    [[ "${2:-}" == "--debug" ]] && profile=debug
    wheel="$(build_wheel "$profile" "$root/target/wheels")"
    log "built $wheel"
    log "install: pip install $wheel  (ONNX Runtime: pip install onnxruntime, or ORT_DYLIB_PATH; docs/python.md)"
    ;;
  test)
    shift
    t0=$SECONDS
    wheel="$(build_wheel debug "$root/target/wheels-test")"
    log "fresh venv $test_venv: the wheel, numpy==$NUMPY_VERSION, pytest==$PYTEST_VERSION"
    rm -rf "$test_venv"
    "$python" -m venv "$test_venv"
    "$test_venv/bin/pip" install --quiet --disable-pip-version-check \
      "$wheel" "numpy==$NUMPY_VERSION" "pytest==$PYTEST_VERSION"
    # The exporter (no libtorch) makes the test model: $C3_EXPORT_BIN (scripts/test.sh
    # passes the one the workspace tests built), else built here.
    if [[ -z "${C3_EXPORT_BIN:-}" ]]; then
      log "cargo build -p c3-export"
      nice -n 10 cargo build --quiet -p c3-export
      C3_EXPORT_BIN="$root/target/debug/c3-export"
    fi
    [[ -x "$C3_EXPORT_BIN" ]] || { log "error: C3_EXPORT_BIN=$C3_EXPORT_BIN is not an executable"; exit 1; }
    C3_EXPORT_BIN="$(realpath "$C3_EXPORT_BIN")"
    export C3_EXPORT_BIN
    [[ -n "${C3_BIN:-}" ]] && C3_BIN="$(realpath "$C3_BIN")" && export C3_BIN
    log "pytest $crate/tests (C3_BIN=${C3_BIN:-unset})"
    # Run from the tests folder so `import c3` finds the installed wheel, not the
    # source folder.
    (cd "$crate/tests" && "$test_venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .)
    log "python tests done in $((SECONDS - t0)) s"
    ;;
  *)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 1
    ;;
esac
