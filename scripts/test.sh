#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the native dependencies
# (idempotent, skipped when present), then runs every crate's tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# disk STEP: free space and the big folders, logged before each step that needs room
# (a CI run once ran out of disk; the log should say where it went).
disk() {
  local sizes; sizes=$(du -sh target .deps 2>/dev/null | awk '{printf "%s %s, ", $2, $1}' || true)
  echo "[disk] before $1: ${sizes}$(df -h --output=avail . | tail -1 | tr -d ' ') free" >&2
}
disk "install-deps"
scripts/install-deps.sh
# The lean c3 (no libtorch): crate graphs, no libtorch linked, the demo round trip
# against an export. First: the workspace tests below rebuild the default c3.
scripts/lean-check.sh
# The runtime's layers: no two of its files import each other, even through others.
python3 tools/import_loops.py crates/c3-runtime/src
disk "the workspace tests"
cargo test --workspace --locked "$@"
# The GPU kit (docs/gpu.md), with the binaries the tests just built: the pack/unpack
# round trip (part sizes, sums, a flipped byte refused) and scripts/gpu-check.sh's
# rehearsal on the CPU (every step of the GPU check, small shapes).
scripts/gpu/test-kit.sh target/debug
# A 60-second soak of c3-serve on the default model (scripts/soak.sh; the 30-minute run
# is in BENCHMARKS.md): concurrency 16 plus whole round trips, compress + decompress,
# cancelled streams and hostile bodies; no 5xx, every answer equal to the serial one.
# RSS growth is checked at 5% only in the long run: within its first minute the
# server is still warming up (allocator arenas, caches), so here the bound is 100%.
cargo build --locked -p c3-serve -p c3-loadgen
scripts/soak.sh --bin target/debug --minutes 1 --rss-growth 100 target/lean/export target/soak-test
# Python bindings (docs/python.md): a debug wheel of crates/c3-python installed into a
# fresh venv, its pytest suite compared with the c3 CLI the workspace tests just built.
export C3_BIN="$PWD/target/debug/c3" C3_EXPORT_BIN="$PWD/target/debug/c3-export"
disk "the Python bindings"
C3_REQUIRE_CLI=1 scripts/python.sh test
# DeepSeek-OCR baseline (docs/ocr-baseline.md): --quick on tiny configurations of both
# systems end to end, the released-configuration parameter count (3,389,119,360),
# deterministic page rendering. Installs the pinned venv .deps/ocr-venv once (~4.9 GB of
# PyPI wheels: torch's CUDA libraries are needed to import it). C3_SKIP_OCR_BASELINE=1 leaves it out.
if [[ "${C3_SKIP_OCR_BASELINE:-}" == 1 ]]; then
  echo "[test] OCR baseline step left out (C3_SKIP_OCR_BASELINE=1)" >&2
else
  disk "the OCR baseline"
  scripts/ocr-baseline.sh --self-test
fi
# Later steps install this wheel rather than building another.
C3_WHEEL="$(ls "$PWD"/target/wheels-test/*.whl)"
export C3_WHEEL
# Triton Inference Server (docs/triton.md): a real tritonserver on a loopback port
# serving the default model through the Python bindings (scripts/triton.sh test;
# installs the pinned server into .deps/triton once). C3_SKIP_TRITON=1 leaves it out.
if [[ "${C3_SKIP_TRITON:-}" == 1 ]]; then
  echo "[test] Triton step left out (C3_SKIP_TRITON=1)" >&2
else
  disk "Triton"
  scripts/triton.sh test
fi
disk "the end"
