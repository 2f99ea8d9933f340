#!/usr/bin/env bash
# The main job on the shipped default model, through the deployment path: export
# it to ONNX (verified against the tch reference), then compress a real page of
# English it never saw (models/demo-page.txt, Linux kernel documentation) window by
# window into latents and reconstruct it with the ONNX Runtime cascade, printing
# the windows, compression ratio, precision and timings.
# Installs what is missing first. Usage: scripts/demo.sh [TEXT_FILE [MODEL_DIR]]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
cargo build --release --locked -p c3-cli -p c3-export -p c3-serve
c3=target/release/c3
model=${2:-models/c3-tiny}
if [[ ! -f "$model/config.json" ]]; then
  # No trained default model in this checkout yet: fall back to random weights,
  # which exercise the whole path but reconstruct nothing meaningful.
  model=target/demo-random-tiny
  [[ -f "$model/config.json" ]] || "$c3" init --preset tiny --seed 0 "$model"
  echo "note: models/c3-tiny is not present; running on a RANDOM tiny checkpoint ($model)" >&2
fi
"$c3" inspect "$model"
export_dir=target/demo-export-$(basename "$model")
rm -rf "$export_dir"
"$c3" export "$model" --out "$export_dir" --verify
"$c3" roundtrip --model "$export_dir" "${1:-models/demo-page.txt}"
