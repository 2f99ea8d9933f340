#!/usr/bin/env bash
# Tests scripts/gpu-kit.sh and scripts/gpu-check.sh without a GPU (run by scripts/test.sh):
#  1. pack (binaries only, 1 MiB parts) -> every part at most 1 MiB, MANIFEST lists each
#     with its sha256; unpack -> the same binaries (stripped) and an env.sh;
#  2. a flipped byte in one part is refused, naming the part; a missing part leaves
#     its stage packed and, with no complete stage, fails;
#  3. the rehearsal: scripts/gpu-check.sh --rehearse runs every step on the CPU, and its
#     report says each passed (or names why it was skipped).
# Usage: scripts/gpu/test-kit.sh BIN_DIR   (a folder with c3, c3-serve, c3-loadgen)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin="$(cd "${1:?usage: test-kit.sh BIN_DIR}" && pwd)"
t="$(mktemp -d)"; trap 'rm -rf "$t"' EXIT
fail() { echo "[test-kit] FAILED: $*" >&2; exit 1; }

scripts/gpu-kit.sh pack "$t/kit" --no-ort --no-corpus --bin-dir "$bin" --part-size 1 2>"$t/pack.log" || { cat "$t/pack.log"; fail "pack"; }
n=0
for p in "$t"/kit/stage1.tar.xz.part-*; do
  n=$((n + 1))
  (( $(stat -c %s "$p") <= 1048576 )) || fail "$p is over 1 MiB"
  grep -q "^$(sha256sum < "$p" | cut -d' ' -f1)  $(basename "$p")\$" "$t/kit/MANIFEST" || fail "$p: not in MANIFEST with its sha256"
done
(( n >= 2 )) || fail "expected several 1 MiB parts, got $n"
! grep -q stage2 "$t/kit/MANIFEST" || fail "--no-ort packed stage2"

scripts/gpu-kit.sh unpack "$t/kit" --to "$t/u" 2>"$t/unpack.log" || { cat "$t/unpack.log"; fail "unpack"; }
for b in c3 c3-serve c3-loadgen; do
  strip -o "$t/$b.want" "$bin/$b"
  cmp -s "$t/$b.want" "$t/u/bin/$b" || fail "$b differs after the round trip"
done
grep -q 'C3_KIT_STAGES="stage1"' "$t/u/env.sh" || fail "env.sh does not name the unpacked stage"

# A flipped byte: refused, naming the part.
cp -r "$t/kit" "$t/bad"
part="$t/bad/stage1.tar.xz.part-001"
printf '\xff' | dd of="$part" bs=1 seek=100 count=1 conv=notrunc status=none
if scripts/gpu-kit.sh unpack "$t/bad" --to "$t/ub" 2>"$t/bad.log"; then fail "a flipped byte was accepted"; fi
grep -q "stage1.tar.xz.part-001: sha256 differs" "$t/bad.log" || { cat "$t/bad.log"; fail "the error does not name the part"; }
# A missing part: the stage stays packed, and with nothing complete the unpack fails.
cp -r "$t/kit" "$t/miss"; rm "$t/miss/stage1.tar.xz.part-000"
if scripts/gpu-kit.sh unpack "$t/miss" --to "$t/um" 2>"$t/miss.log"; then fail "an incomplete kit unpacked"; fi
grep -q "not here yet (stage1.tar.xz.part-000)" "$t/miss.log" || { cat "$t/miss.log"; fail "the missing part is not named"; }
echo "[test-kit] pack/unpack: $n parts, sums checked, flipped byte and missing part refused" >&2

# The rehearsal, with the unpacked binaries (as on the host, where env.sh puts the
# host's torch/lib on the loader's path; here the lean libtorch of .deps plays it).
export LD_LIBRARY_PATH="$PWD/.deps/libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
scripts/gpu-check.sh "$t/report" --rehearse --c3 "$t/u/bin/c3" --c3-serve "$t/u/bin/c3-serve" \
  --c3-loadgen "$t/u/bin/c3-loadgen" || { cat "$t/report/report.md" 2>/dev/null; fail "the rehearsal failed"; }
python3 - "$t/report/report.json" <<'PY' || fail "rehearsal report"
import json, sys
r = json.load(open(sys.argv[1]))
want = ["environment", "train", "tch_roundtrip", "parity", "demo_page", "hf_peer", "serve", "speed"]
assert list(r["steps"]) == want, list(r["steps"])
for name, s in r["steps"].items():
    assert s.get("ok") is True, (name, s)
    if "skipped" in s:
        assert name == "hf_peer", (name, s)  # the only step the CPU rehearsal cannot run
par = r["steps"]["parity"]["variants"]["fp32-concat"]["rows"]
assert len(par) == 4 and all(x["equal_to_hf_golden"] for x in par), par
assert r["steps"]["train"]["steps"] == 3 and len(r["steps"]["train"]["loss_curve"]) == 3
print("[test-kit] rehearsal: every step passed", file=sys.stderr)
PY
cat "$t/report/report.md"
