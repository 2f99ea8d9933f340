#!/usr/bin/env bash
# Soak test of c3-serve (issue 25): MINUTES of load at concurrency 16 (c3-loadgen's
# streamed round trips, one report per minute) beside a mix of whole round trips,
# compress + decompress, cancelled streams and hostile bodies (benches/soak/mix.py,
# every answer compared with the serial one), with the server's resident memory
# sampled every second. Then benches/soak/summary.py: per-minute throughput and
# latency percentiles, RSS growth after the first minute, 5xx and wrong answers, a
# PNG plot where matplotlib is installed. Exit 1 when a limit is broken.
#
#   scripts/soak.sh [--bin DIR] [--minutes N] [--rss-growth PCT] [--max-new-tokens K]
#                   [--serve-arg ARG]... EXPORT OUT
#
# --bin: where c3-serve and c3-loadgen are (default target/release, built here).
# --max-new-tokens: sent with every request (default: the server's for loadgen's
#   streams, 48 for the mix); a large model on this CPU needs a small K.
# --serve-arg: one more argument for c3-serve (repeat it: --serve-arg --malloc-arenas
#   --serve-arg 0 runs with glibc's default arenas).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release minutes=30 growth=5 serve_args=() loadgen_k=() mix_k=()
while [[ $# -gt 2 ]]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --serve-arg) serve_args+=("$2"); shift 2 ;;
    --max-new-tokens) loadgen_k=(--max-new-tokens "$2"); mix_k=(--max-new-tokens "$2"); shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --rss-growth) growth=$2; shift 2 ;;
    *) echo "soak: unknown flag $1" >&2; exit 2 ;;
  esac
done
export_dir=${1:?usage: scripts/soak.sh [--bin DIR] [--minutes N] EXPORT OUT}
out=${2:?out folder}
[[ -f $export_dir/c3-export.json ]] || { echo "soak: $export_dir is not an export" >&2; exit 2; }
if [[ $bin == target/release ]]; then
  cargo build --release --locked -p c3-serve -p c3-loadgen >&2
fi
mkdir -p "$out"
rm -f "$out"/minute-*.json "$out"/rss.tsv
log="$out/server.log"
"$bin/c3-serve" "$export_dir" --addr 127.0.0.1:0 --max-batch 16 "${serve_args[@]}" >"$log" 2>&1 &
server=$!
sampler=""
mixer=""
cleanup() {
  [[ -n $sampler ]] && kill "$sampler" 2>/dev/null || true
  [[ -n $mixer ]] && kill "$mixer" 2>/dev/null || true
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap cleanup EXIT
url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 || true)
  [[ -n $url ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $url ]] || { echo "soak: c3-serve did not start" >&2; exit 1; }
echo "[soak] c3-serve $url ($export_dir), $minutes minute(s)" >&2
(
  start=$SECONDS
  while kill -0 "$server" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || true)
    if [[ -n $rss ]]; then printf '%d\t%s\n' $((SECONDS - start)) "$rss" >>"$out/rss.tsv"; fi
    sleep 1
  done
) &
sampler=$!
seconds=$((minutes * 60))
python3 benches/soak/mix.py --url "$url" --documents models/demo-page.txt \
  --seconds "$seconds" --out "$out/mix.json" "${mix_k[@]}" &
mixer=$!
for m in $(seq 1 "$minutes"); do
  "$bin/c3-loadgen" --url "$url" --documents models/demo-page.txt --concurrency 16 \
    --duration 60 --warmup 0 --json "${loadgen_k[@]}" >"$out/minute-$(printf %02d "$m").json"
  echo "[soak] minute $m done" >&2
done
mix_rc=0
wait "$mixer" || mix_rc=$?
mixer=""
# Any Python with matplotlib draws the plot (PYTHON=.deps/ocr-venv/bin/python here).
"${PYTHON:-python3}" benches/soak/summary.py "$out" --rss-growth "$growth" --mix-exit "$mix_rc"
