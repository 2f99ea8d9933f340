#!/usr/bin/env bash
# The lean `c3`: built without libtorch (`cargo build -p c3-cli --no-default-features`).
# Checks that its crate graph holds no tch, that the runtime's holds neither the
# TensorRT builder (c3-trt) nor clap, that the binary links no libtorch, that it
# exports the default model (without --verify, whose reference is tch) and
# round-trips the demo page against the export, and that the tch commands refuse in
# one line. Run before the workspace tests: they rebuild the default `c3`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail() { echo "[lean] FAIL: $*" >&2; exit 1; }
out=target/lean
mkdir -p "$out"

tree() { cargo tree --locked -e normal --prefix none "$@" | awk '{print $1}' | sort -u; }
tree -p c3-cli --no-default-features | grep -qxE 'tch|torch-sys|c3-torch' &&
  fail "c3-cli --no-default-features depends on tch"
tree -p c3-runtime | grep -qxE 'c3-trt|clap' && fail "c3-runtime depends on c3-trt or clap"

cargo build --locked -p c3-cli --no-default-features
cp target/debug/c3 "$out/c3"
c3="$out/c3"
if ldd "$c3" | grep -q torch; then fail "the lean c3 links libtorch"; fi

"$c3" export models/c3-tiny --out "$out/export" --force >/dev/null
json=$("$c3" roundtrip --model "$out/export" models/demo-page.txt --json)
python3 - "$json" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
p = r["char_precision"]
assert r["backend"] == "onnxruntime", r["backend"]
assert p >= 0.9, f"demo page char precision {p}"
print(f"[lean] demo page round trip: char precision {p:.3f}, {len(r['windows'])} windows")
PY
set +e
msg=$("$c3" train --config models/c3-tiny.recipe.toml 2>&1); rc=$?
set -e
[[ $rc == 1 && $(wc -l <<<"$msg") == 1 && $msg == *"needs libtorch"* ]] ||
  fail "c3 train in the lean build: exit $rc, $msg"
echo "[lean] ok: no tch in c3, no c3-trt/clap in c3-runtime, no libtorch linked"
