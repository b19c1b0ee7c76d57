# Sourced by scripts/quickstart.sh and scripts/dev-server.sh: stops a dev
# server the script started, never leaving it behind.

# stop_process PID NAME: SIGTERM, a bounded wait (10 s), then SIGKILL; NAME
# is the calling script's, for its message.
stop_process() {
	local pid=$1 name=$2
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$name: the server did not stop in 10 s; killing it" >&2
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}
