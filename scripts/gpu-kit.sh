#!/usr/bin/env bash
# Packs what a GPU run needs into parts small enough to travel beside the checkout to
# a GPU host that has no network and no Rust (docs/gpu.md), and unpacks them there.
#
#   scripts/gpu-kit.sh pack OUT [--part-size MiB] [--bin-dir DIR] [--no-ort]
#       (here) Two archives, each xz-compressed, split into parts of at most
#       --part-size MiB (default 25), with OUT/MANIFEST (sha256 of every part and of
#       each whole archive):
#         stage1  the release binaries c3, c3-serve, c3-loadgen, stripped, and the
#                 training corpus (data/corpus/{sotu,python,perl}, when fetched; ~7 MB
#                 compressed): one part. `c3 train --device cuda`, the tch cascade and
#                 the HF peer need only it.
#         stage2  ONNX Runtime 1.31.1's GPU build (onnxruntime-gpu wheel from PyPI,
#                 pinned, sha256-checked): libonnxruntime.so.1.31.1, the shared and the
#                 CUDA provider libraries (~190 MB compressed: ~8 parts)
#       --no-ort leaves stage2 out and --no-corpus the corpus (the test suite packs
#       binaries only).
#   scripts/gpu-kit.sh unpack [KIT] [--to DEST]
#       (there) Checks every part against MANIFEST (a missing part or a flipped byte is
#       refused, naming the part), reassembles each stage whose parts are all present,
#       unpacks into DEST (default KIT/unpacked; the corpus into data/corpus of this
#       checkout, where the recipes name it) and writes DEST/env.sh: PATH, the
#       host's torch/lib for the c3 binary, ORT_DYLIB_PATH, and C3_CUDA_LIBS with the
#       Python packages' nvidia/*/lib folders (the runtime searches those itself too).
#       KIT defaults to target/gpu-kit. Needs only coreutils, tar and python3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[gpu-kit] %s\n' "$*" >&2; }
die() { printf '[gpu-kit] error: %s\n' "$*" >&2; exit 1; }

ORT_WHEEL=onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
ORT_SHA=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
ORT_LIBS=(libonnxruntime.so.1.31.1 libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
BINS=(c3 c3-serve c3-loadgen)

# xz when installed, Python's lzma otherwise (the GPU hosts have Python for certain).
compress() { if command -v xz >/dev/null; then xz -T2 -6 -c; else python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.LZMAFile(sys.stdout.buffer,"w",preset=6), sys.stdout.buffer)' ; fi; }
decompress() { if command -v xz >/dev/null; then xz -dc; else python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.LZMAFile(sys.stdin.buffer), sys.stdout.buffer)'; fi; }

pack() {
  local out="" size=25 bindir="$root/target/release" ort=1 corpus=1
  while (($#)); do
    case "$1" in
      --part-size) size="$2"; shift 2 ;;
      --bin-dir) bindir="$2"; shift 2 ;;
      --no-ort) ort=0; shift ;;
      --no-corpus) corpus=0; shift ;;
      -*) die "unknown flag $1" ;;
      *) out="$1"; shift ;;
    esac
  done
  [[ -n $out ]] || die "usage: gpu-kit.sh pack OUT [--part-size MiB] [--bin-dir DIR] [--no-ort] [--no-corpus]"
  [[ $size =~ ^[1-9][0-9]*$ ]] || die "--part-size must be a whole number of MiB, got '$size'"
  for b in "${BINS[@]}"; do [[ -x $bindir/$b ]] || die "$bindir/$b is missing: cargo build --release -p c3-cli -p c3-serve -p c3-loadgen"; done
  local stage; stage="$(mktemp -d)"; trap 'rm -rf "$stage"' RETURN
  rm -rf "$out"; mkdir -p "$out" "$stage/stage1/bin"
  for b in "${BINS[@]}"; do strip -o "$stage/stage1/bin/$b" "$bindir/$b"; done
  git -C "$root" rev-parse HEAD > "$stage/stage1/COMMIT" 2>/dev/null || echo unknown > "$stage/stage1/COMMIT"
  if [[ $corpus == 1 && -d $root/data/corpus/sotu ]]; then
    mkdir -p "$stage/stage1/corpus"
    for c in sotu python perl; do cp -r "$root/data/corpus/$c" "$stage/stage1/corpus/"; done
  fi
  local stages=(stage1)
  if [[ $ort == 1 ]]; then
    local cache="$root/.deps/gpu-kit-downloads"; mkdir -p "$cache"
    if ! echo "$ORT_SHA  $cache/$ORT_WHEEL" | sha256sum -c --quiet - 2>/dev/null; then
      log "downloading onnxruntime-gpu==1.31.1 (256 MB)"
      rm -f "$cache/$ORT_WHEEL"
      python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 -d "$cache" onnxruntime-gpu==1.31.1
      echo "$ORT_SHA  $cache/$ORT_WHEEL" | sha256sum -c --quiet - || die "checksum mismatch for $ORT_WHEEL"
    fi
    mkdir -p "$stage/stage2/ort/lib"
    unzip -q -j -o "$cache/$ORT_WHEEL" "${ORT_LIBS[@]/#/onnxruntime/capi/}" -d "$stage/stage2/ort/lib"
    stages+=(stage2)
  fi
  : > "$out/MANIFEST"
  for s in "${stages[@]}"; do
    log "compressing $s ($(du -sh "$stage/$s" | cut -f1))"
    tar -C "$stage/$s" -cf - . | compress > "$stage/$s.tar.xz"
    echo "$(sha256sum < "$stage/$s.tar.xz" | cut -d' ' -f1)  $s.tar.xz" >> "$out/MANIFEST"
    split -b "${size}M" -d -a 3 "$stage/$s.tar.xz" "$out/$s.tar.xz.part-"
    rm "$stage/$s.tar.xz"
  done
  (cd "$out" && sha256sum -- *.part-* >> MANIFEST)
  log "$(ls "$out" | grep -c part-) parts of at most $size MiB in $out ($(du -sh "$out" | cut -f1)); carry each as its own path (docs/gpu.md)"
}

# The CUDA library folders of the Python environments on this host (nvidia/*/lib).
nvidia_dirs() {
  local d
  for d in ${VIRTUAL_ENV:-} ${CONDA_PREFIX:-} /opt/torch/.venv /usr/local /usr; do
    compgen -G "$d/lib/python3*/site-packages/nvidia/*/lib" || true
  done | awk '!seen[$0]++' | paste -sd: -
}

# The folder of a torch installation's libraries (libtorch_cpu.so), if any.
torch_lib_dir() {
  local d
  for d in ${VIRTUAL_ENV:-} /opt/torch/.venv /usr/local /usr; do
    compgen -G "$d/lib/python3*/site-packages/torch/lib/libtorch_cpu.so" || true
  done | head -n1 | xargs -r dirname
}

unpack() {
  local kit="$root/target/gpu-kit" dest=""
  while (($#)); do
    case "$1" in
      --to) dest="$2"; shift 2 ;;
      -*) die "unknown flag $1" ;;
      *) kit="$1"; shift ;;
    esac
  done
  dest="${dest:-$kit/unpacked}"
  [[ -f $kit/MANIFEST ]] || die "$kit/MANIFEST is missing: carry it with the parts (scripts/gpu-kit.sh pack)"
  mkdir -p "$dest"
  local s got=()
  for s in stage1 stage2; do
    grep -q "  $s.tar.xz\$" "$kit/MANIFEST" || continue
    local parts missing=() p sum
    mapfile -t parts < <(grep "  $s.tar.xz.part-" "$kit/MANIFEST" | awk '{print $2}')
    for p in "${parts[@]}"; do
      [[ -f $kit/$p ]] || { missing+=("$p"); continue; }
      sum="$(grep "  $p\$" "$kit/MANIFEST" | cut -d' ' -f1)"
      [[ "$(sha256sum < "$kit/$p" | cut -d' ' -f1)" == "$sum" ]] || die "$kit/$p: sha256 differs from MANIFEST (a corrupted copy: carry it again)"
    done
    if ((${#missing[@]})); then
      log "$s: ${#missing[@]} of ${#parts[@]} parts not here yet (${missing[*]}): left packed"
      continue
    fi
    sum="$(grep "  $s.tar.xz\$" "$kit/MANIFEST" | cut -d' ' -f1)"
    [[ "$(cat "${parts[@]/#/$kit/}" | sha256sum | cut -d' ' -f1)" == "$sum" ]] || die "$s: the reassembled archive's sha256 differs from MANIFEST"
    cat "${parts[@]/#/$kit/}" | decompress | tar -C "$dest" -xf -
    if [[ -d $dest/corpus ]]; then
      mkdir -p "$root/data/corpus"
      cp -r "$dest"/corpus/* "$root/data/corpus/"
      log "training corpus copied to $root/data/corpus"
    fi
    got+=("$s")
    log "$s unpacked into $dest"
  done
  ((${#got[@]})) || die "no stage has all its parts in $kit"
  local nv tl
  nv="$(nvidia_dirs)"; tl="$(torch_lib_dir)"
  {
    echo "# Written by scripts/gpu-kit.sh unpack on $(hostname): source it before the GPU check."
    echo "export PATH=\"$dest/bin:\$PATH\""
    [[ -n $tl ]] && echo "export LD_LIBRARY_PATH=\"$tl\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
    [[ -f $dest/ort/lib/libonnxruntime.so.1.31.1 ]] && echo "export ORT_DYLIB_PATH=\"$dest/ort/lib/libonnxruntime.so.1.31.1\""
    [[ -n $nv ]] && echo "export C3_CUDA_LIBS=\"$nv\""
    echo "export C3_KIT_STAGES=\"${got[*]}\""
  } > "$dest/env.sh"
  log "environment in $dest/env.sh (torch lib: ${tl:-none found}; CUDA library folders: $(tr ':' '\n' <<<"$nv" | grep -c . || true))"
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  unpack) shift; unpack "$@" ;;
  *) die "usage: gpu-kit.sh pack OUT [--part-size MiB] [--bin-dir DIR] [--no-ort] | unpack [KIT] [--to DEST]" ;;
esac
