#!/usr/bin/env bash
# Recipe sweep on one borrowed GPU machine (H200, 16 cores): eight variants of the
# default model's recipe trained side by side by c3_ref.py (PyTorch + HF Qwen2),
# each for the same wall-clock budget (its cosine fitted to the steps it manages).
# Brings back every run's metrics.jsonl and the best checkpoints (split to fit the
# tool's 16 MiB-per-file limit). Needs: target/gpu/corpus.tgz (data/corpus packed).
# Usage (on the device): tools/train-reference/sweep-h200.sh SECONDS OUTDIR [SET]
# SET 1 (default): the first sweep (2026-11-29, 380 s); SET 2: the second (330 s).
set -uo pipefail
secs=${1:-400}; out=${2:-/tmp/sweep-out}; set_no=${3:-1}
mkdir -p "$out" /tmp/sweep
nvidia-smi -L; python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, torch.cuda.get_device_name(0))'
tar -xzf target/gpu/corpus.tgz -C .   # -> data/corpus/{sotu,python,perl}
base=docs/training/c3-tiny-w40.recipe.toml
ref=tools/train-reference/c3_ref.py
h256='model.encoder.hidden_size=256 model.encoder.intermediate_size=1024 model.encoder.num_hidden_layers=4 model.encoder.num_attention_heads=8 model.encoder.num_key_value_heads=4 model.decoder.hidden_size=256 model.decoder.intermediate_size=1024 model.decoder.num_hidden_layers=4 model.decoder.num_attention_heads=8 model.decoder.num_key_value_heads=4'
w() { echo "data.min_tokens=$1 data.max_tokens=$1"; }
if [[ $set_no == 1 ]]; then
declare -A runs=(
  [v1-w32-n8-h128-b16]="$(w 32) optim.batch_size=16"
  [v2-w40-n8-h128-b16]="$(w 40) optim.batch_size=16"
  [v3-w40-n8-h128-b128]="$(w 40) optim.batch_size=128"
  [v4-w40-n8-h256L4-b128]="$(w 40) optim.batch_size=128 optim.lr=1.5e-3 $h256"
  [v5-w64-n8-h256L4-b128]="$(w 64) optim.batch_size=128 optim.lr=1.5e-3 $h256"
  [v6-w64-n16-h256L4-b128]="$(w 64) model.latent_tokens=16 optim.batch_size=128 optim.lr=1.5e-3 $h256"
  [v7-w40-n8-h128-b128-nodrop]="$(w 40) optim.batch_size=128 data.word_dropout=0.0"
  [v8-w128-n16-h256L4-b64]="$(w 128) model.latent_tokens=16 optim.batch_size=64 optim.lr=1e-3 $h256"
)
else
declare -A runs=(
  [s1-w64-n8-h128-b128]="$(w 64) optim.batch_size=128"
  [s2-w40-n8-h128-b64]="$(w 40) optim.batch_size=64"
  [s3-w40-n8-h128-b32]="$(w 40) optim.batch_size=32"
  [s4-w40-n8-h128-b128-seed1]="$(w 40) optim.batch_size=128 seed=1"
  [s5-w256-n16-h256L4-b64]="$(w 256) model.latent_tokens=16 optim.batch_size=64 optim.lr=1e-3 $h256"
  [s6-w256-n32-h256L4-b64]="$(w 256) model.latent_tokens=32 optim.batch_size=64 optim.lr=1e-3 $h256"
  [s7-w128-n8-h256L4-b64]="$(w 128) optim.batch_size=64 optim.lr=1e-3 $h256"
)
fi
for name in "${!runs[@]}"; do
  sets=(); for kv in ${runs[$name]}; do sets+=(--set "$kv"); done
  OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1 python3 "$ref" sweep --recipe "$base" "${sets[@]}" \
    --set schedule.eval_every=1000 --set schedule.total_steps=10000000 \
    --out "/tmp/sweep/$name" --seconds "$secs" > "/tmp/sweep/$name.log" 2>&1 &
done
wait
for name in "${!runs[@]}"; do echo "== $name"; tail -n 3 "/tmp/sweep/$name.log"; grep eval_char /tmp/sweep/$name/metrics.jsonl | tail -n 2 | cut -c1-160; done
# Metrics of every run; checkpoints of the best h128 and best h256 run by final held-out precision.
(cd /tmp/sweep && tar -czf "$out/metrics.tgz" */metrics.jsonl *.log)
best() { for d in /tmp/sweep/$1; do [[ -d $d/checkpoint ]] || continue
  printf '%s %s\n' "$(grep eval_char "$d/metrics.jsonl" | tail -n 1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["eval_char_precision"])')" "$(basename "$d")"; done | sort -rn | head -n 1 | cut -d' ' -f2; }
for pat in '*-h128-*' '*-n16-h256L4-*'; do
  b=$(best "$pat"); [[ -n $b ]] || continue
  (cd /tmp/sweep && tar -czf - "$b/checkpoint") | split -b 15m - "$out/ckpt-$b.tgz.part-"
done
ls -la "$out"
