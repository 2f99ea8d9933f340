#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the native dependencies
# (idempotent, skipped when present), then runs every crate's tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
cargo test --workspace --locked "$@"
