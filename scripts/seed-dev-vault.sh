#!/usr/bin/env bash
# Seed a *development* Vault or OpenBao server with the demo data used by the
# quickstart, the Docker set-up (docker/docker-compose.yml) and manual tests.
#
# Uses only the HTTP API through curl, so it works against HashiCorp Vault and
# OpenBao alike. It is written in plain POSIX sh (plus pipefail), so it also
# runs under busybox `sh` in a minimal curl container.
#
# Environment:
#   VAULT_ADDR           server address, e.g. http://127.0.0.1:8200 (required)
#   VAULT_TOKEN          a root (or equally privileged) token        (required)
#   VAULT_CACERT         optional CA bundle for an https VAULT_ADDR
#   SEED_PRINT_APPROLE=1 print VAULT_ROLE_ID=... / VAULT_SECRET_ID=... lines
#   SEED_APPROLE_OUT=F   write those two lines to file F (mode 600)
#   SEED_WAIT_SECONDS    how long to wait for the server to be ready (default 30)
#
# Creates (idempotent: running it again changes nothing that is already right):
#   - KV v2 engine at secret/ (mounted only if absent; dev servers have it)
#     secret/test/path, 2 versions, final data
#       {"username":"demo-user","password":"demo-password-v2"}
#   - KV v1 engine at kv1/ with
#     kv1/test/path = {"username":"demo-user","password":"demo-password"}
#   - ACL policy demo-read: read on secret/data/test/*, secret/metadata/test/*,
#     kv1/test/*
#   - AppRole auth at approle/ with role demo (token_policies=demo-read,
#     token_ttl=1h). A fresh secret_id is generated only when it is asked for
#     (SEED_PRINT_APPROLE=1 or SEED_APPROLE_OUT).
#
# It never prints the token or a secret value; the AppRole role_id/secret_id
# are credentials and are only printed or written when asked for.
#
# DEV ONLY: the demo values are public. Never point this at a real server.

set -eu
# `set -o pipefail` exists in bash and busybox sh (what the containers use) but
# not in every /bin/sh (e.g. older dash), so enable it where it is supported.
if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi

log() { printf 'seed: %s\n' "$*"; }
die() { printf 'seed: ERROR: %s\n' "$*" >&2; exit 1; }

: "${VAULT_ADDR:?VAULT_ADDR must be set, e.g. http://127.0.0.1:8200}"
: "${VAULT_TOKEN:?VAULT_TOKEN must be set to a root token of a dev server}"
command -v curl >/dev/null 2>&1 || die "curl is required"

ADDR=${VAULT_ADDR%/}
WAIT_SECONDS=${SEED_WAIT_SECONDS:-30}
PRINT_APPROLE=${SEED_PRINT_APPROLE:-0}
APPROLE_OUT=${SEED_APPROLE_OUT:-}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/seed-dev-vault.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# The token goes into a private header file (curl -H @file) rather than onto
# curl's command line, so it shows up neither in the output nor in `ps`.
(umask 077 && printf 'X-Vault-Token: %s\n' "$VAULT_TOKEN" >"$WORK/headers")

CODE=000
BODY="$WORK/body"

# api STEP METHOD PATH / api_json STEP METHOD PATH JSON
# Call $ADDR/v1/PATH. The response body is left in $BODY and the HTTP status
# in $CODE. They fail (naming STEP) only if the server cannot be reached;
# callers check $CODE with `expect`. A JSON request body goes through stdin so
# that it never appears on a command line.
api() {
	CODE=$(curl -sS --connect-timeout 5 --max-time 30 ${VAULT_CACERT:+--cacert "$VAULT_CACERT"} \
		-o "$BODY" -w '%{http_code}' -X "$2" -H @"$WORK/headers" "$ADDR/v1/$3") ||
		die "$1: cannot reach $ADDR ($2 /v1/$3)"
}

api_json() {
	CODE=$(printf '%s' "$4" | curl -sS --connect-timeout 5 --max-time 30 ${VAULT_CACERT:+--cacert "$VAULT_CACERT"} \
		-o "$BODY" -w '%{http_code}' -X "$2" -H @"$WORK/headers" \
		-H 'Content-Type: application/json' --data-binary @- "$ADDR/v1/$3") ||
		die "$1: cannot reach $ADDR ($2 /v1/$3)"
}

# expect STEP CODE... : fail naming STEP unless $CODE is one of CODE...
# Error bodies from Vault/OpenBao are {"errors":[...]} and hold no secrets.
expect() {
	_step=$1
	shift
	for _ok in "$@"; do
		[ "$CODE" = "$_ok" ] && return 0
	done
	_err=$(sed -n 's/.*"errors":\(\[[^]]*\]\).*/\1/p' "$BODY" 2>/dev/null | cut -c1-400)
	die "$_step failed: HTTP $CODE (expected $*) ${_err:+- $_err}"
}

# json_str KEY : first "KEY":"value" string in $BODY (responses are compact JSON)
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$BODY" | head -n 1; }
# json_num KEY : first "KEY":123 number in $BODY
json_num() { sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" "$BODY" | head -n 1; }

# --- 0. server reachable, unsealed, token valid ------------------------------
log "waiting for $ADDR to be ready (up to ${WAIT_SECONDS}s)"
_waited=0
while :; do
	_code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 \
		${VAULT_CACERT:+--cacert "$VAULT_CACERT"} "$ADDR/v1/sys/health" || true)
	[ "$_code" = 200 ] && break
	if [ "$_waited" -ge "$WAIT_SECONDS" ]; then
		case $_code in
		000 | '') die "server check: no answer from $ADDR after ${WAIT_SECONDS}s (is the server running?)" ;;
		*) die "server check: $ADDR/v1/sys/health answered HTTP $_code, not 200 (sealed, standby, or not a Vault/OpenBao server?)" ;;
		esac
	fi
	sleep 1
	_waited=$((_waited + 1))
done
api "token check" GET auth/token/lookup-self
expect "token check (is VAULT_TOKEN valid?)" 200

# --- 1. KV v2 at secret/ ------------------------------------------------------
api "list secret engines" GET sys/mounts
expect "list secret engines" 200
KV2_FRESH=0
if grep -q '"secret/":' "$BODY"; then
	api "read secret/ mount" GET sys/mounts/secret
	expect "read secret/ mount" 200
	if ! grep -q '"type":"kv"' "$BODY" || ! grep -q '"version":"2"' "$BODY"; then
		die "secret/ is mounted but is not a KV v2 engine; unmount it or use a fresh dev server"
	fi
	log "KV v2 engine at secret/ already present"
else
	log "mounting KV v2 engine at secret/"
	api_json "mount KV v2 at secret/" POST sys/mounts/secret '{"type":"kv","options":{"version":"2"}}'
	expect "mount KV v2 at secret/" 200 204
	KV2_FRESH=1
fi

# kv2_write STEP PASSWORD : write a new version of secret/test/path
kv2_write() {
	_tries=1
	[ "$KV2_FRESH" = 1 ] && _tries=15 # a new KV v2 mount needs a moment to be ready
	while :; do
		api_json "$1" POST secret/data/test/path \
			"{\"data\":{\"username\":\"demo-user\",\"password\":\"$2\"}}"
		[ "$CODE" = 200 ] && return 0
		_tries=$((_tries - 1))
		[ "$_tries" -le 0 ] && expect "$1" 200
		sleep 1
	done
}

api "read secret/metadata/test/path" GET secret/metadata/test/path
expect "read secret/metadata/test/path" 200 404
CUR=0
if [ "$CODE" = 200 ]; then CUR=$(json_num current_version); fi
CUR=${CUR:-0}
if [ "$CUR" -eq 0 ]; then
	log "writing secret/test/path version 1 (keys: username, password)"
	kv2_write "write secret/test/path v1" demo-password
	CUR=1
fi
if [ "$CUR" -eq 1 ]; then
	log "writing secret/test/path version 2 (keys: username, password)"
	kv2_write "write secret/test/path v2" demo-password-v2
else
	api "read secret/data/test/path" GET secret/data/test/path
	expect "read secret/data/test/path" 200
	if grep -q '"password":"demo-password-v2"' "$BODY" && grep -q '"username":"demo-user"' "$BODY"; then
		log "secret/test/path already seeded ($CUR versions, latest is the expected data)"
	else
		log "secret/test/path has $CUR versions but unexpected latest data; writing the expected data as a new version"
		kv2_write "rewrite secret/test/path" demo-password-v2
	fi
fi

# --- 2. KV v1 at kv1/ ---------------------------------------------------------
api "list secret engines" GET sys/mounts
expect "list secret engines" 200
if grep -q '"kv1/":' "$BODY"; then
	api "read kv1/ mount" GET sys/mounts/kv1
	expect "read kv1/ mount" 200
	if ! grep -q '"type":"kv"' "$BODY" || grep -q '"version":"2"' "$BODY"; then
		die "kv1/ is mounted but is not a KV v1 engine; unmount it or use a fresh dev server"
	fi
	log "KV v1 engine at kv1/ already present"
else
	log "mounting KV v1 engine at kv1/"
	api_json "mount KV v1 at kv1/" POST sys/mounts/kv1 '{"type":"kv","options":{"version":"1"}}'
	expect "mount KV v1 at kv1/" 200 204
fi
log "writing kv1/test/path (keys: username, password)"
api_json "write kv1/test/path" POST kv1/test/path '{"username":"demo-user","password":"demo-password"}'
expect "write kv1/test/path" 200 204

# --- 3. policy demo-read ------------------------------------------------------
log "writing policy demo-read"
api_json "write policy demo-read" PUT sys/policies/acl/demo-read \
	'{"policy":"path \"secret/data/test/*\" {\n  capabilities = [\"read\"]\n}\n\npath \"secret/metadata/test/*\" {\n  capabilities = [\"read\"]\n}\n\npath \"kv1/test/*\" {\n  capabilities = [\"read\"]\n}\n"}'
expect "write policy demo-read" 200 204

# --- 4. AppRole auth and role demo --------------------------------------------
api "list auth methods" GET sys/auth
expect "list auth methods" 200
if grep -q '"approle/":' "$BODY"; then
	log "AppRole auth method at approle/ already enabled"
else
	log "enabling AppRole auth method at approle/"
	api_json "enable AppRole at approle/" POST sys/auth/approle '{"type":"approle"}'
	expect "enable AppRole at approle/" 200 204
fi
log "writing AppRole role demo (token_policies=demo-read, token_ttl=1h)"
api_json "write AppRole role demo" POST auth/approle/role/demo \
	'{"token_policies":["demo-read"],"token_ttl":"1h"}'
expect "write AppRole role demo" 200 204

# --- 5. AppRole credentials (only when asked for) -----------------------------
if [ "$PRINT_APPROLE" = 1 ] || [ -n "$APPROLE_OUT" ]; then
	api "read role_id of role demo" GET auth/approle/role/demo/role-id
	expect "read role_id of role demo" 200
	ROLE_ID=$(json_str role_id)
	[ -n "$ROLE_ID" ] || die "read role_id of role demo: no role_id in the response"

	log "generating a fresh secret_id for role demo"
	api_json "generate secret_id for role demo" POST auth/approle/role/demo/secret-id '{}'
	expect "generate secret_id for role demo" 200
	SECRET_ID=$(json_str secret_id)
	[ -n "$SECRET_ID" ] || die "generate secret_id for role demo: no secret_id in the response"

	if [ -n "$APPROLE_OUT" ]; then
		_tmp="$APPROLE_OUT.tmp.$$"
		(umask 077 && printf 'VAULT_ROLE_ID=%s\nVAULT_SECRET_ID=%s\n' "$ROLE_ID" "$SECRET_ID" >"$_tmp") ||
			die "write AppRole credentials: cannot write $_tmp"
		chmod 600 "$_tmp" || die "write AppRole credentials: cannot chmod $_tmp"
		mv -f "$_tmp" "$APPROLE_OUT" || die "write AppRole credentials: cannot move $_tmp to $APPROLE_OUT"
		log "wrote VAULT_ROLE_ID and VAULT_SECRET_ID to $APPROLE_OUT (mode 600)"
	fi
	if [ "$PRINT_APPROLE" = 1 ]; then
		log "AppRole credentials for role demo (dev only):"
		printf 'VAULT_ROLE_ID=%s\nVAULT_SECRET_ID=%s\n' "$ROLE_ID" "$SECRET_ID"
	fi
else
	log "AppRole credentials not shown (set SEED_PRINT_APPROLE=1 or SEED_APPROLE_OUT=FILE)"
fi

log "done"
