#!/usr/bin/env bash
# Two builds of c3 on one export in one run: `c3 bench` (throughput, TTFT, decode at
# batch 1 and 8) and c3-serve under c3-loadgen (concurrency 1, 4, 16), each build in
# turn, so a change's ratio is measured on the same machine minutes apart. Used for
# issue 24 (the runtime redesign must not cost speed). Pause background jobs first:
# BG_PID=<pid> sends it SIGSTOP for the run and SIGCONT after.
#
#   benches/before-after/run.sh OLD_BIN_DIR NEW_BIN_DIR EXPORT OUT [SERVE_FLAGS]
#
# OLD_BIN_DIR and NEW_BIN_DIR each hold c3 and c3-serve; the newer c3-loadgen (in
# NEW_BIN_DIR) drives both servers. OUT receives bench-{old,new}.json and
# serve-{old,new}.json; print the comparison with benches/before-after/table.py OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
old=${1:?old bin dir} new=${2:?new bin dir} export_dir=${3:?export} out=${4:?out dir}
serve_flags=${5:---window 128 --max-batch 16}
mkdir -p "$out"
if [[ -n "${BG_PID:-}" ]]; then
  kill -STOP "$BG_PID"
  trap 'kill -CONT "$BG_PID" 2>/dev/null || true' EXIT
fi

serve() { # bin_dir name
  local log url server
  log=$(mktemp)
  # shellcheck disable=SC2086
  "$1/c3-serve" "$export_dir" --addr 127.0.0.1:0 $serve_flags >"$log" 2>&1 &
  server=$!
  url=""
  for _ in $(seq 1 1200); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 || true)
    [[ -n "$url" ]] && break
    kill -0 $server 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  "$new/c3-loadgen" --url "$url" --documents models/demo-page.txt --wait-ready 60 \
    --concurrency 1,4,16 --requests 16 --max-new-tokens 128 --json >"$out/serve-$2.json"
  kill -TERM $server; wait $server || true
  rm -f "$log"
}

for name in old new; do
  dir=$old; [[ $name == new ]] && dir=$new
  echo "[before-after] c3 bench ($name: $dir/c3)" >&2
  "$dir/c3" bench --model "$export_dir" --no-reference --no-limits --json >"$out/bench-$name.json"
done
for name in old new; do
  dir=$old; [[ $name == new ]] && dir=$new
  echo "[before-after] c3-serve + c3-loadgen ($name: $dir/c3-serve)" >&2
  serve "$dir" "$name"
done
echo "[before-after] done: $out" >&2
