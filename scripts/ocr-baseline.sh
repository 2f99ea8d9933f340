#!/usr/bin/env bash
# DeepSeek-OCR-2 and C3 on the same pages, one command (issue 23; docs/ocr-baseline.md).
#
#   scripts/ocr-baseline.sh [--quick] [--device cpu|cuda] OUT [run.py options]
#       -> OUT/report.json, OUT/report.md, OUT/throughput_vs_compression.png, OUT/pages/
#   scripts/ocr-baseline.sh --self-test      the CI test: tiny configurations of both systems
#
# Installs what is missing first: the pinned Python venv (.deps/ocr-venv, via
# benches/deepseek_ocr/install.sh), the Qwen tokenizer files and ONNX Runtime
# (scripts/install-deps.sh --no-torch), the held-out Linux docs (scripts/fetch-corpus.sh
# --linux; not for --self-test or --texts) and the `c3` release binary (cargo build;
# $C3_BIN, when set, is used instead).
# Full-shape runs need ~16 GB free memory for each system in turn (they never run
# together) and ~40 GB of disk under target/ocr-baseline (checkpoint + one fp32 export at a
# time with --drop-exports). Options after OUT go to benches/deepseek_ocr/run.py
# (--help lists them: --shape, --pages, --c3-n, --c3-shipped, --ocr-checkpoint, ...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[ocr-baseline] %s\n' "$*" >&2; }

quick=() device=cpu self_test=0 out="" rest=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=(--quick); shift ;;
    --device) device="$2"; shift 2 ;;
    --device=*) device="${1#*=}"; shift ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) if [[ -z "$out" && "$1" != -* ]]; then out="$1"; else rest+=("$1"); fi; shift ;;
  esac
done
[[ $self_test == 1 || -n "$out" ]] || { sed -n '2,16p' "$0" >&2; exit 2; }
[[ "$device" == cpu || "$device" == cuda ]] || { log "--device cpu|cuda"; exit 2; }

py="$(benches/deepseek_ocr/install.sh)"
[[ -f .deps/tokenizers/.done && -f .deps/onnxruntime/.done ]] || scripts/install-deps.sh --no-torch
# $C3_BIN (scripts/test.sh exports its debug build) or the release binary, built if missing.
if [[ -n "${C3_BIN:-}" ]]; then
  [[ -x "$C3_BIN" ]] || { log "C3_BIN=$C3_BIN is not an executable"; exit 1; }
elif [[ ! -x target/release/c3 ]]; then
  log "building the c3 binary (cargo build --release -p c3-cli)"
  cargo build --release -p c3-cli --locked
fi
# The processor and tokenizer of transformers would reach for the hub: everything is local.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

if [[ $self_test == 1 ]]; then
  exec "$py" -m unittest -v benches/deepseek_ocr/test_ocr_baseline.py
fi

needs_corpus=1
for a in "${rest[@]}"; do [[ "$a" == --texts ]] && needs_corpus=0; done
if [[ $needs_corpus == 1 && ! -f data/corpus/linux/.done ]]; then
  scripts/fetch-corpus.sh --linux
fi
OCR_BASELINE_COMMAND="scripts/ocr-baseline.sh ${quick[*]} --device $device $out ${rest[*]}" \
  exec "$py" benches/deepseek_ocr/run.py "$out" "${quick[@]}" --device "$device" --threads "$OMP_NUM_THREADS" "${rest[@]}"
