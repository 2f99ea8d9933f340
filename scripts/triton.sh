#!/usr/bin/env bash
# Triton Inference Server for a C3 export (docs/triton.md).
#
#   scripts/triton.sh EXPORT [--port P] [--grpc-port P] [--metrics-port P] [--repo DIR]
#                     [--provider cpu|cuda|tensorrt] [--instances N] [--max-batch N]
#                     [--max-queue N] [--threads N] [--copy-export]
#       writes the model repository for EXPORT (`c3 triton`, default target/triton/repo,
#       replaced on every run) and runs tritonserver in the foreground on 127.0.0.1:
#       HTTP on P (default 8000), gRPC on P+1, metrics on P+2. Ctrl-C stops it.
#   scripts/triton.sh test [PYTEST_ARGS...]
#       the Triton tests (tests/triton, pytest): every config.pbtxt against Triton's
#       schema, and a real server on a free loopback port (16 concurrent round trips
#       equal serial `c3 roundtrip`, compress/decompress, hostile inputs).
#   scripts/triton.sh bench EXPORT [--requests N] [--concurrency 1,16]
#       throughput and latency of c3_roundtrip through Triton (tests/triton/bench.py),
#       then of c3-serve with c3-loadgen on the same export and documents
#       (models/demo-page.txt paragraphs), both with --max-batch 16, one run.
#   scripts/triton.sh soak EXPORT [--minutes N] [--out DIR] [--rss-growth PCT]
#       the soak (tests/triton/soak.py: 16 clients sending a mix for N minutes, default
#       10; every answer equal to the serial one, no 5xx, RSS of the server and its
#       stubs per second), summarized by benches/soak/summary.py into DIR
#       (default target/soak-triton): soak.md, soak.json, soak.png.
#   scripts/triton.sh install
#       only the installs below.
#
# Installed once, pinned and checksummed, into the git-ignored .deps/triton/:
#   server/           the nvidia-pytriton==0.7.0 wheel unpacked (not pip-installed):
#                     tritonserver 2.51 with its libraries, the Python backend and stubs
#   backends/python/  Triton's Python backend with the stub for the system's CPython 3.11
#                     (the stub links libpython3.11.so.1.0; apt-get install libpython3.11)
#   numpy/            numpy==1.26.4 for the stub's Python (numpy 2 crashes the backend's
#                     BYTES decoding), put on sys.path by model.py
#   client-venv/      the test client, tests/triton/requirements.txt
# Every run installs the c3 wheel ($C3_WHEEL, else `scripts/python.sh build`) into
# .deps/triton/c3/ and uses the `c3` CLI at $C3_BIN (else builds target/release/c3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

PYTRITON_VERSION=0.7.0
PYTRITON_WHEEL="nvidia_pytriton-$PYTRITON_VERSION-py3-none-manylinux_2_35_x86_64.whl"
PYTRITON_SHA256=21f063ff93bb426d0c06b7a55e7eb9efcfe62c0dddd9a908e9877e18710128df
NUMPY_VERSION=1.26.4
# The stub must match the libpython the system has: Debian 12's is 3.11.
STUB_PYTHON="${TRITON_STUB_PYTHON:-3.11}"
python="${PYTHON:-python3}"
deps="$root/.deps/triton"
server="$deps/server"
backends="$deps/backends"
numpy_dir="$deps/numpy"
c3_dir="$deps/c3"
client_venv="$deps/client-venv"

log() { printf '[triton] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

pip_quiet() { "$python" -m pip --disable-pip-version-check --quiet "$@"; }

install_server() {
  [[ -f "$server/.done-$PYTRITON_VERSION" ]] && return 0
  mkdir -p "$deps/downloads"
  local whl="$deps/downloads/$PYTRITON_WHEEL"
  if ! { [[ -f "$whl" ]] && echo "$PYTRITON_SHA256  $whl" | sha256sum -c --quiet - 2>/dev/null; }; then
    log "downloading nvidia-pytriton==$PYTRITON_VERSION (55 MB; tritonserver, not pip-installed)"
    local tmp; tmp="$(mktemp -d "$deps/downloads/tmp.XXXXXX")"
    pip_quiet download --no-deps --only-binary=:all: --platform manylinux_2_35_x86_64 \
      -d "$tmp" "nvidia-pytriton==$PYTRITON_VERSION"
    mv "$tmp/$PYTRITON_WHEEL" "$whl"
    rm -rf "$tmp"
    echo "$PYTRITON_SHA256  $whl" | sha256sum -c --quiet - || { rm -f "$whl"; die "checksum mismatch for $PYTRITON_WHEEL"; }
  fi
  log "unpacking tritonserver into $server"
  rm -rf "$server" "$server.tmp"
  mkdir -p "$server.tmp"
  unzip -q "$whl" 'pytriton/tritonserver/*' 'nvidia_pytriton.libs/*' -d "$server.tmp"
  mv "$server.tmp" "$server"
  touch "$server/.done-$PYTRITON_VERSION"
}

install_backend() {
  local be="$backends/python" tt="$server/pytriton/tritonserver"
  local stub="$tt/python_backend_stubs/$STUB_PYTHON/triton_python_backend_stub"
  [[ -x "$stub" ]] || die "nvidia-pytriton $PYTRITON_VERSION has no Python backend stub for CPython $STUB_PYTHON"
  if [[ ! -f "$be/.done-$STUB_PYTHON" ]]; then
    rm -rf "$be"; mkdir -p "$be"
    cp "$tt/backends/python/libtriton_python.so" "$tt/backends/python/triton_python_backend_utils.py" "$stub" "$be/"
    touch "$be/.done-$STUB_PYTHON"
  fi
  # The stub runs the system's libpython (not a venv's, not PYTHONPATH).
  if LD_LIBRARY_PATH="$server/nvidia_pytriton.libs" ldd "$be/triton_python_backend_stub" | grep -q "not found"; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "installing libpython$STUB_PYTHON (the Python backend stub links it)"
      apt-get install -y -qq "libpython$STUB_PYTHON" >/dev/null || { apt-get update -qq && apt-get install -y -qq "libpython$STUB_PYTHON" >/dev/null; }
    fi
    LD_LIBRARY_PATH="$server/nvidia_pytriton.libs" ldd "$be/triton_python_backend_stub" | grep -q "not found" &&
      die "the Python backend stub cannot find its libraries ($(LD_LIBRARY_PATH="$server/nvidia_pytriton.libs" ldd "$be/triton_python_backend_stub" | grep 'not found' | xargs)): install libpython$STUB_PYTHON (apt-get install libpython$STUB_PYTHON)"
  fi
  return 0
}

install_numpy() {
  [[ -f "$numpy_dir/.done-$NUMPY_VERSION" ]] && return 0
  log "numpy==$NUMPY_VERSION for CPython $STUB_PYTHON into $numpy_dir"
  rm -rf "$numpy_dir"
  pip_quiet install --no-deps --only-binary=:all: --python-version "$STUB_PYTHON" \
    --platform manylinux2014_x86_64 --target "$numpy_dir" "numpy==$NUMPY_VERSION"
  touch "$numpy_dir/.done-$NUMPY_VERSION"
}

install_client() {
  local req="$root/tests/triton/requirements.txt" sum
  sum="$(sha256sum "$req" | cut -d' ' -f1)"
  [[ -f "$client_venv/.done-$sum" ]] && return 0
  log "test client venv $client_venv ($req)"
  rm -rf "$client_venv"
  "$python" -m venv "$client_venv"
  "$client_venv/bin/pip" install --disable-pip-version-check --quiet -r "$req"
  touch "$client_venv/.done-$sum"
}

# The c3 wheel into $c3_dir (fresh each run: the wheel's version does not change
# when its code does).
install_c3() {
  local wheel="${C3_WHEEL:-}"
  if [[ -z "$wheel" ]]; then
    "$root/scripts/python.sh" build >&2
    wheel="$(ls -t "$root"/target/wheels/*.whl | head -n1)"
  fi
  [[ -f "$wheel" ]] || die "no c3 wheel at $wheel (scripts/python.sh build makes one)"
  log "c3 wheel $(basename "$wheel") into $c3_dir"
  rm -rf "$c3_dir"
  pip_quiet install --no-deps --target "$c3_dir" "$wheel"
}

c3_cli() {
  if [[ -n "${C3_BIN:-}" ]]; then
    [[ -x "$C3_BIN" ]] || die "C3_BIN=$C3_BIN is not an executable"
    echo "$C3_BIN"
    return
  fi
  log "cargo build --release -p c3-cli (the c3 CLI writes the repository)"
  nice -n 10 cargo build --quiet --locked --release -p c3-cli --bin c3 >&2
  echo "$root/target/release/c3"
}

ort_lib() {
  if [[ -n "${ORT_DYLIB_PATH:-}" ]]; then echo "$ORT_DYLIB_PATH"; return; fi
  local lib; lib="$(ls "$root"/.deps/onnxruntime/lib/libonnxruntime.so.* 2>/dev/null | head -n1)"
  [[ -n "$lib" ]] || die "no ONNX Runtime in .deps/onnxruntime/lib: run scripts/install-deps.sh or set ORT_DYLIB_PATH"
  echo "$lib"
}

install_all() {
  command -v unzip >/dev/null || die "unzip is needed (apt-get install unzip)"
  "$root/scripts/install-deps.sh" >&2
  install_server
  install_backend
  install_numpy
}

serve() {
  local export="" port=8000 grpc="" metrics="" repo="$root/target/triton/repo" extra=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) port="$2"; shift 2 ;;
      --grpc-port) grpc="$2"; shift 2 ;;
      --metrics-port) metrics="$2"; shift 2 ;;
      --repo) repo="$2"; shift 2 ;;
      --copy-export) extra+=("$1"); shift ;;
      --provider|--instances|--max-batch|--max-queue|--threads) extra+=("$1" "$2"); shift 2 ;;
      -h|--help) sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      -*) die "unknown option $1 (scripts/triton.sh --help)" ;;
      *) [[ -z "$export" ]] || die "one export folder, not $export and $1"; export="$1"; shift ;;
    esac
  done
  [[ -n "$export" ]] || die "usage: scripts/triton.sh EXPORT [--port P] (scripts/triton.sh --help)"
  grpc="${grpc:-$((port + 1))}"
  metrics="${metrics:-$((port + 2))}"
  install_all
  install_c3
  local c3; c3="$(c3_cli)"
  # Replaced on every run (c3 triton refuses any folder that is not a repository).
  "$c3" triton "$export" --out "$repo" --force --python-path "$c3_dir" --python-path "$numpy_dir" "${extra[@]}" >&2
  local ort; ort="$(ort_lib)"
  log "tritonserver on 127.0.0.1: HTTP $port, gRPC $grpc, metrics $metrics; repository $repo"
  exec env LD_LIBRARY_PATH="$server/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    ORT_DYLIB_PATH="$ort" \
    "$server/pytriton/tritonserver/bin/tritonserver" \
    --model-repository "$repo" --backend-directory "$backends" \
    --http-address 127.0.0.1 --grpc-address 127.0.0.1 --metrics-address 127.0.0.1 \
    --http-port "$port" --grpc-port "$grpc" --metrics-port "$metrics" \
    --pinned-memory-pool-byte-size 0 --cuda-memory-pool-byte-size 0:0
}

run_tests() {
  local t0=$SECONDS
  install_all
  install_client
  [[ -n "${C3_BIN:-}" ]] || { nice -n 10 cargo build --quiet --locked -p c3-cli --bin c3 >&2; export C3_BIN="$root/target/debug/c3"; }
  [[ -n "${C3_EXPORT_BIN:-}" ]] || { nice -n 10 cargo build --quiet --locked -p c3-export >&2; export C3_EXPORT_BIN="$root/target/debug/c3-export"; }
  if [[ -z "${C3_WHEEL:-}" ]]; then
    "$root/scripts/python.sh" build --debug >&2
    C3_WHEEL="$(ls -t "$root"/target/wheels/*.whl | head -n1)"
  fi
  export C3_WHEEL
  ORT_DYLIB_PATH="$(ort_lib)"
  export ORT_DYLIB_PATH
  log "pytest tests/triton (C3_BIN=$C3_BIN, C3_WHEEL=$C3_WHEEL)"
  "$client_venv/bin/python" -m pytest -q -p no:cacheprovider "$@" "$root/tests/triton"
  log "Triton tests done in $((SECONDS - t0)) s"
}

# The installs, the test client, and release builds of the wheel and the c3 CLI
# (unless $C3_WHEEL / $C3_BIN name them), once, before a server starts (its child
# would build them otherwise): what bench and soak run with.
prepare_client_run() {
  install_all
  install_client
  if [[ -z "${C3_WHEEL:-}" ]]; then
    "$root/scripts/python.sh" build >&2
    C3_WHEEL="$(ls -t "$root"/target/wheels/*.whl | head -n1)"
  fi
  C3_BIN="$(c3_cli)"
  export C3_WHEEL C3_BIN
}

# wait_http URL PID SECONDS: until URL answers 200, or fail if PID exits first.
wait_http() {
  local url="$1" pid="$2" deadline=$((SECONDS + $3))
  until curl -sf -o /dev/null "$url"; do
    kill -0 "$pid" 2>/dev/null || die "the server exited before $url was ready"
    [[ $SECONDS -lt $deadline ]] || die "$url not ready after $3 s"
    sleep 0.5
  done
}

# port_free P: refuse a port something already answers on (the benchmark would
# measure that instead).
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    die "port $1 on 127.0.0.1 is in use (--port P uses P..P+2 and P+10)"
  fi
}

run_bench() {
  local export="" requests=64 levels="1,16" port=18500 docs="$root/models/demo-page.txt"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --requests) requests="$2"; shift 2 ;;
      --concurrency) levels="$2"; shift 2 ;;
      --port) port="$2"; shift 2 ;;
      -*) die "unknown option $1" ;;
      *) export="$1"; shift ;;
    esac
  done
  [[ -n "$export" ]] || die "usage: scripts/triton.sh bench EXPORT [--requests N] [--concurrency 1,16]"
  prepare_client_run
  local serve_bin="${C3_SERVE_BIN:-}" loadgen_bin="${C3_LOADGEN_BIN:-}"
  if [[ -z "$serve_bin" || -z "$loadgen_bin" ]]; then
    log "cargo build --release -p c3-serve -p c3-loadgen"
    nice -n 10 cargo build --quiet --locked --release -p c3-serve -p c3-loadgen >&2
    serve_bin="$root/target/release/c3-serve"; loadgen_bin="$root/target/release/c3-loadgen"
  fi
  local pids=()
  trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done' EXIT
  port_free "$port"; port_free "$((port + 1))"; port_free "$((port + 2))"; port_free "$((port + 10))"
  log "Triton: c3_roundtrip at concurrency $levels, $requests requests per level"
  # triton.sh execs tritonserver: this pid is the server.
  "$root/scripts/triton.sh" "$export" --port "$port" --repo "$root/target/triton/bench-repo" \
    --max-batch 16 > "$root/target/triton/bench-server.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/v2/health/ready" "${pids[-1]}" 600
  "$client_venv/bin/python" "$root/tests/triton/bench.py" --url "127.0.0.1:$port" \
    --documents "$docs" --concurrency "$levels" --requests "$requests"
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  log "c3-serve: /v1/roundtrip (streamed) with c3-loadgen, same documents and levels"
  "$serve_bin" "$export" --addr "127.0.0.1:$((port + 10))" --max-batch 16 \
    > "$root/target/triton/bench-serve.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$((port + 10))/healthz" "${pids[-1]}" 120
  "$loadgen_bin" --url "http://127.0.0.1:$((port + 10))" --concurrency "$levels" \
    --documents "$docs" --requests "$requests"
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}

# The soak (issue 25): tests/triton/soak.py's mix for MINUTES against tritonserver,
# then benches/soak/summary.py (the same table, RSS growth and plot as c3-serve's).
run_soak() {
  local export="" minutes=10 port=18600 out="$root/target/soak-triton" growth=5
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --minutes) minutes="$2"; shift 2 ;;
      --port) port="$2"; shift 2 ;;
      --out) out="$2"; shift 2 ;;
      --rss-growth) growth="$2"; shift 2 ;;
      -*) die "unknown option $1" ;;
      *) export="$1"; shift ;;
    esac
  done
  [[ -n "$export" ]] || die "usage: scripts/triton.sh soak EXPORT [--minutes N] [--out DIR]"
  prepare_client_run
  port_free "$port"; port_free "$((port + 1))"; port_free "$((port + 2))"
  mkdir -p "$out"
  local pid
  "$root/scripts/triton.sh" "$export" --port "$port" --repo "$root/target/triton/soak-repo" \
    --max-batch 16 > "$out/server.log" 2>&1 &
  pid=$!
  trap 'kill -TERM "$pid" 2>/dev/null || true' EXIT
  wait_http "http://127.0.0.1:$port/v2/health/ready" "$pid" 600
  log "soak: $minutes minute(s) against tritonserver (pid $pid) on port $port"
  local rc=0
  "$client_venv/bin/python" "$root/tests/triton/soak.py" --url "127.0.0.1:$port" --server-pid "$pid" \
    --documents "$root/models/demo-page.txt" --seconds "$((minutes * 60))" --out "$out" || rc=$?
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
  "${PYTHON:-python3}" "$root/benches/soak/summary.py" "$out" --rss-growth "$growth" --mix-exit "$rc" \
    --title "Triton (c3 Python backend) soak: concurrency 16 mix" --server tritonserver
}

case "${1:-}" in
  install) install_all; install_client; log "installed under $deps" ;;
  bench) shift; mkdir -p "$root/target/triton"; run_bench "$@" ;;
  soak) shift; run_soak "$@" ;;
  test) shift; run_tests "$@" ;;
  "") sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 1 ;;
  *) serve "$@" ;;
esac
