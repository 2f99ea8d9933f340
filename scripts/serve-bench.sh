#!/usr/bin/env bash
# Serving benchmark: starts c3-serve on EXPORT (loopback, a free port), drives it
# with c3-loadgen at several concurrency levels in one run (ratios from one run),
# prints the loadgen table (or its JSON with --json), stops the server.
#
#   scripts/serve-bench.sh EXPORT [--serve "c3-serve flags"] [c3-loadgen flags...]
#
# Example (BENCHMARKS.md):
#   scripts/serve-bench.sh target/bench-tiny --concurrency 1,4,16 --requests 96
set -euo pipefail
cd "$(dirname "$0")/.."

export_dir=${1:?usage: scripts/serve-bench.sh EXPORT [--serve "FLAGS"] [c3-loadgen flags...]}
shift
serve_flags=""
if [[ "${1:-}" == "--serve" ]]; then
    serve_flags=${2:?--serve needs a quoted flag list}
    shift 2
fi
[[ -f "$export_dir/c3-export.json" ]] || { echo "error: $export_dir is not an export folder (make one with c3-export CKPT --out DIR)" >&2; exit 1; }

scripts/install-deps.sh >&2
cargo build --release --locked -p c3-serve -p c3-loadgen >&2

log=$(mktemp)
# shellcheck disable=SC2086 # serve_flags is a flag list on purpose
target/release/c3-serve "$export_dir" --addr 127.0.0.1:0 $serve_flags >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 600); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 || true)
    [[ -n "$url" ]] && break
    kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "error: c3-serve did not start within 60 s" >&2; cat "$log" >&2; exit 1; }
echo "c3-serve: $url ($export_dir $serve_flags)" >&2
target/release/c3-loadgen --url "$url" --documents models/demo-page.txt --wait-ready 60 "$@"
