#!/usr/bin/env bash
# Installs the DeepSeek-OCR baseline's Python environment into .deps/ocr-venv (git-ignored):
# transformers 5.23.0 (ships DeepSeek-OCR-2), torch 2.11.0, Pillow, numpy, matplotlib and
# their dependencies, every version pinned in requirements.txt beside this script, from
# PyPI only. Idempotent: the marker .deps/ocr-venv/.done holds the sha256 of
# requirements.txt, so a finished install is skipped and a changed pin list reinstalls.
#
# Why the whole CUDA wheel set: PyPI's torch wheels are CUDA builds, and although
# libtorch_cpu.so alone needs only libcudart + libcupti (what scripts/install-deps.sh
# uses for tch), Python's torch/_C loads libtorch_python.so, which links libtorch_cuda.so,
# cudnn, cublas, cufft, cusparse, curand, cufile, nccl and nvshmem directly: with
# `pip install --no-deps torch` plus the two small runtime wheels, `import torch` fails
# ("libcudnn.so.9: cannot open shared object file"; tried 2026-12-07). So the full set is
# installed (~4.9 GB on disk; 46 s from PyPI here, less from pip's cache).
#
# Usage: benches/deepseek_ocr/install.sh        (prints the venv's python on stdout)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${C3_OCR_VENV:-$root/.deps/ocr-venv}"
req="$here/requirements.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"
log() { printf '[ocr-install] %s\n' "$*" >&2; }

if [[ "$(cat "$venv/.done" 2>/dev/null)" != "$want" ]]; then
  log "installing the pinned environment into $venv"
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || { log "needs Python 3.11 (the pins are cp311 wheels)"; exit 1; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check pip==25.3
  # A torch wheel already fetched by scripts/install-deps.sh is used instead of a download.
  links=()
  [[ -d "$root/.deps/downloads" ]] && links=(--find-links "$root/.deps/downloads")
  # --no-cache-dir: pip's cache would hold a second copy of the ~3 GB of wheels.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    --only-binary=:all: "${links[@]}" -r "$req"
  HF_HUB_OFFLINE=1 "$venv/bin/python" -c 'import torch, transformers, PIL, matplotlib
from transformers import DeepseekOcr2ForConditionalGeneration
assert transformers.__version__ == "5.23.0", transformers.__version__'
  echo "$want" > "$venv/.done"
  log "done ($(du -sh "$venv" | cut -f1))"
fi
echo "$venv/bin/python"
