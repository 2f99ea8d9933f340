#!/usr/bin/env bash
# On a GPU host (docs/gpu.md), after the check: trains a recipe with `c3 train --device
# cuda` for at most SECONDS (then stops it the way Ctrl-C does: the step finishes, a
# checkpoint is saved), and packs the newest checkpoint, without the optimizer state,
# into parts of 15 MiB (the host returns at most 8 files of 16 MiB per command) with
# the run's metrics.jsonl and a sha256 list. Resumable: run it again to continue.
#
#   scripts/gpu/train.sh RECIPE SECONDS OUT      e.g. models/c3-small.recipe.toml 300 $OUT
# Back here: cat OUT/ckpt.tar.xz.part-* | xz -dc | tar -x -C runs/   (sha256sum -c OUT/SHA256SUMS first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
recipe=${1:?usage: train.sh RECIPE SECONDS OUT}; secs=${2:?}; out=${3:?}
mkdir -p "$out"
c3=$(command -v c3 || echo target/release/c3)
"$c3" train --config "$recipe" --device "${C3_TRAIN_DEVICE:-cuda}" --json > "$out/train.log" 2> "$out/train.err" &
pid=$!
( sleep "$secs"; kill -INT $pid 2>/dev/null ) & timer=$!
wait $pid || { tail -n 3 "$out/train.err" >&2; exit 1; }
kill $timer 2>/dev/null || true
run=$(python3 -c 'import sys,tomllib; r=tomllib.load(open(sys.argv[1],"rb")); print(r.get("out_dir") or "runs/" + r["name"])' "$recipe")
last=$(ls -d "$run"/checkpoint-* | sort | tail -n 1)
cp "$run/metrics.jsonl" "$out/"
tar -C "$(dirname "$last")" --exclude 'trainer_state.*' -cf - "$(basename "$last")" | xz -T0 -6 | split -b 15m -d -a 2 - "$out/ckpt.tar.xz.part-"
(cd "$out" && sha256sum ckpt.tar.xz.part-* metrics.jsonl > SHA256SUMS)
echo "[gpu-train] $(basename "$last") of $run packed into $out ($(ls "$out" | wc -l) files)" >&2
