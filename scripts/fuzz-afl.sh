#!/usr/bin/env bash
# Coverage-guided fuzzing of one c3-fuzz target under AFL++ (fuzz/src/bin/c3-fuzz-afl.rs),
# beside c3-fuzz's structure-aware mutations (BENCHMARKS.md, "Fuzzing").
#
#   scripts/fuzz-afl.sh TARGET SECONDS [OUT]      (TARGET: a folder of fuzz/corpus/)
#
# Installs cargo-afl (pinned; its install builds AFL++ from source) into .deps/cargo-afl
# once, builds the instrumented harness into target/afl (its own folder: other
# RUSTFLAGS), runs afl-fuzz for SECONDS from fuzz/corpus/TARGET into OUT (default
# target/afl-out/TARGET) and prints AFL++'s counts. Exit 1 when AFL++ saved a crash
# (a panic, or an allocation past the target's limit) or a hang.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${1:?usage: scripts/fuzz-afl.sh TARGET SECONDS [OUT]}
seconds=${2:?usage: scripts/fuzz-afl.sh TARGET SECONDS [OUT]}
out=${3:-target/afl-out/$target}
[[ -d fuzz/corpus/$target ]] || { echo "fuzz-afl: no fuzz/corpus/$target (targets: $(ls fuzz/corpus | tr '\n' ' '))" >&2; exit 2; }
CARGO_AFL_VERSION=0.18.2
deps=$PWD/.deps/cargo-afl
# cargo-afl keeps AFL++ under XDG_DATA_HOME: inside .deps, not the user's home.
export XDG_DATA_HOME=$deps/data PATH=$deps/bin:$PATH
if [[ ! -x $deps/bin/cargo-afl ]]; then
  echo "[fuzz-afl] installing cargo-afl $CARGO_AFL_VERSION (builds AFL++; a few minutes, once)" >&2
  cargo install --locked --quiet "cargo-afl@$CARGO_AFL_VERSION" --root "$deps"
fi
echo "[fuzz-afl] building the instrumented harness (target/afl)" >&2
CARGO_TARGET_DIR=target/afl cargo afl build --quiet --locked -p c3-fuzz --features afl --bin c3-fuzz-afl
# The harness links every parser and their libraries: more edges than AFL++'s default
# map holds. The binary says how many it has; AFL++ itself counts a few more (293,483
# against 293,429 here: a map cut that short made every input time out), so 4 KiB more.
map=$(AFL_DUMP_MAP_SIZE=1 target/afl/debug/c3-fuzz-afl "$target" || true)
[[ $map =~ ^[0-9]+$ ]] || { echo "fuzz-afl: the harness did not say its map size ($map)" >&2; exit 1; }
export AFL_MAP_SIZE=$((map + 4096))
rm -rf "$out"; mkdir -p "$out"
echo "[fuzz-afl] afl-fuzz on $target for $seconds s -> $out" >&2
# No UI; the machine's core pattern and CPU governor are not ours to change. No
# CMPLOG (-c -): its second fork server, the same binary, never answered here (every
# seed timed out); without it the runs below find new paths at ~10k inputs/s.
AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  cargo afl fuzz -c - -i "fuzz/corpus/$target" -o "$out" -V "$seconds" -t 5000 \
  -- target/afl/debug/c3-fuzz-afl "$target" >"$out/afl.log" 2>&1 || {
    tail -20 "$out/afl.log" >&2; exit 1; }
stats=$out/default/fuzzer_stats
val() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
crashes=$(val saved_crashes); hangs=$(val saved_hangs)
echo "$target: $(val execs_done) inputs in $(val run_time) s ($(val execs_per_sec)/s), corpus $(val corpus_count) (from $(ls "fuzz/corpus/$target" | wc -l) seeds), edges $(val edges_found)/$(val total_edges) ($(val bitmap_cvg)), crashes $crashes, hangs $hangs"
[[ $crashes == 0 && $hangs == 0 ]]
