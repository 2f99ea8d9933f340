#!/usr/bin/env bash
# Exports one checkpoint with every flag set `c3 export` takes and prints each file's
# sha256, one line per file: diff two runs (before and after a change to the exporter,
# the contract or the runtime) to show the exported bytes did not move.
# Usage: scripts/export-hashes.sh C3_BINARY CHECKPOINT OUT_DIR > hashes.txt
set -euo pipefail
c3=${1:?usage: export-hashes.sh C3_BINARY CHECKPOINT OUT_DIR}
ckpt=${2:?checkpoint folder}
out=${3:?scratch folder}
mkdir -p "$out"
sets=(
  "--dtype fp32 --kv-cache concat"
  "--dtype fp32 --kv-cache shared-buffer"
  "--dtype fp16 --kv-cache concat"
  "--dtype fp16 --kv-cache shared-buffer"
  "--dtype bf16 --kv-cache concat"
  "--dtype fp32 --target tensorrt"
  "--dtype fp16 --target tensorrt"
  "--dtype fp32 --quantize int8"
  "--dtype fp32 --quantize int4 --keep-lm-head"
  "--dtype fp16 --quantize int4 --quant-compute fp32"
  "--dtype fp32 --decoder-embeds-only"
)
for s in "${sets[@]}"; do
  name=$(echo "$s" | tr -c 'a-z0-9\n' '_')
  rm -rf "$out/$name"
  # shellcheck disable=SC2086
  "$c3" export "$ckpt" --out "$out/$name" $s >/dev/null
  # provenance.json records when and how long (not part of the contract): left out.
  (cd "$out/$name" && find . -type f ! -name provenance.json | LC_ALL=C sort | xargs sha256sum) |
    sed "s|^|$name |"
done
