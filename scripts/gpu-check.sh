#!/usr/bin/env bash
# The GPU check in one command (docs/gpu.md): runs every step its inputs allow and
# writes OUT/report.json and OUT/report.md.
#
#   (there)  scripts/gpu-kit.sh unpack && source target/gpu-kit/unpacked/env.sh &&
#            scripts/gpu-check.sh OUT
#   (here)   scripts/gpu-check.sh --rehearse OUT   # CPU provider, small shapes (test suite)
#
# Flags after OUT go to scripts/gpu/check.py (--budget SECONDS, --only STEP,...;
# --c3/--c3-serve/--c3-loadgen BIN, else PATH, else target/release).
# Exit status: 0 when no step failed (skipped steps are not failures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 scripts/gpu/check.py "$@"
