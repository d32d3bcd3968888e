# shellcheck shell=bash disable=SC2034 # variables here are for the scripts
# lib.sh - sourced by the benchmark scripts (bench/run_*.sh).
#
# The temp dir, ulpd, target programs driven through a FIFO, waits with
# timeouts and kill-by-PID clean-up are those of the integration tests
# (tests/integration/lib.sh, sourced here); this adds what only the
# benchmarks need: a command put before ulpd, requests through
# ulp_bench_req, timed ulpctl calls and small statistics.
#
# Everything the helpers print (progress, diagnostics of a failure) goes to
# stderr; a script prints its results with `report`, to stdout.
#
# Environment: ULP_BUILD (build tree, default: <repo>/build),
# BENCH_WAIT_TIMEOUT (seconds for a target's reply, default 60),
# BENCH_CMD_TIMEOUT (seconds for one request to ulpd, default 600),
# BENCH_KEEP_TMP=1 (keep the temp dir), BENCH_ULPD_PREFIX (a command put
# before ulpd, e.g. "chrt -f 10" to run it SCHED_FIFO), BENCH_ULPCTL_PREFIX
# (a command put before ulpctl, e.g. "perf record -a -g -o F --" to profile
# the whole machine while one timed request runs).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ULP_BUILD=${ULP_BUILD:-$BENCH_DIR/../build}
ULP_BUILD=$(cd "$ULP_BUILD" && pwd)
BENCH_BIN=$ULP_BUILD/bench
# The integration library's knobs, set from ours (theirs suit short tests).
ULP_TARGETS=$BENCH_BIN
ULP_WAIT_TIMEOUT=${BENCH_WAIT_TIMEOUT:-60}
ULP_CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-600}
ULP_KEEP_TMP=${BENCH_KEEP_TMP:-0}
# shellcheck source=tests/integration/lib.sh
source "$BENCH_DIR/../tests/integration/lib.sh"

# Results alone on stdout: run_all.sh >results.md must not collect progress.
exec {BENCH_STDOUT}>&1 >&2

# report: copy stdin to the script's stdout.
report()
{
	cat >&"$BENCH_STDOUT"
}

# start_ulpd runs $ULPD_BIN; a wrapper that execs the prefix keeps ulpd's
# PID the one start_ulpd records, so it is still stopped by PID.
if [ -n "${BENCH_ULPD_PREFIX:-}" ]; then
	need_file "$ULPD_BIN"
	printf '#!/usr/bin/env bash\nexec %s %q "$@"\n' "$BENCH_ULPD_PREFIX" "$ULPD_BIN" >"$TMP/ulpd-prefixed"
	chmod +x "$TMP/ulpd-prefixed"
	ULPD_BIN=$TMP/ulpd-prefixed
fi
if [ -n "${BENCH_ULPCTL_PREFIX:-}" ]; then
	need_file "$ULPCTL_BIN"
	printf '#!/usr/bin/env bash\nexec %s %q "$@"\n' "$BENCH_ULPCTL_PREFIX" "$ULPCTL_BIN" >"$TMP/ulpctl-prefixed"
	chmod +x "$TMP/ulpctl-prefixed"
	ULPCTL_BIN=$TMP/ulpctl-prefixed
fi

stop_ulpd()
{
	[ -n "$ULPD_PID" ] && kill_pid "$ULPD_PID" TERM
	ULPD_PID=
}

# send_cmd_within SECONDS NAME COMMAND: send_cmd for an answer that may
# take longer than a target's usual reply.
send_cmd_within()
{
	local WAIT_TIMEOUT=$1
	shift
	send_cmd "$@"
}

# quit_target NAME: send "quit", give it 10 s to exit, then kill it.
quit_target()
{
	local name=$1 fd=${TFD[$1]} pid=${TPID[$1]} i
	printf 'quit\n' >&"$fd" || true
	for ((i = 0; i < 1000; i++)); do
		pid_alive "$pid" || break
		sleep 0.01
	done
	stop_target "$name"
}

# request JSON: one request to ulpd through ulp_bench_req; the flattened
# reply ("wall_us=.. ok=1 key=value ...") in REPLY.  Fails unless ok.
request()
{
	local rc=0
	REPLY=$(timeout -k 5 "$CMD_TIMEOUT" "$BENCH_BIN/ulp_bench_req" "$SOCK" "$1") || rc=$?
	[ "$rc" -eq 0 ] || fail "request $1 failed (exit $rc): $REPLY"
}

# try_request JSON: like request, but within REQ_TIMEOUT seconds (set by
# the script: a transition's timeout and some) and, on failure, returns
# non-zero with the reply or the reason in REPLY, so that the script can
# report the failure in its table and go on.
try_request()
{
	local rc=0
	REPLY=$(timeout -k 5 "$REQ_TIMEOUT" "$BENCH_BIN/ulp_bench_req" "$SOCK" "$1" 2>&1) ||
		rc=$?
	[ "$rc" -eq 124 ] && REPLY="error=no reply from ulpd within ${REQ_TIMEOUT}s"
	return "$rc"
}

# ulpctl ARGS...: run ulpctl with our socket (bounded); the wall time in
# microseconds in ULPCTL_US.  Fails unless it exits 0.
ULPCTL_US=0
ulpctl()
{
	local t0 t1 out rc=0
	t0=$(now_us)
	out=$(timeout -k 5 "$CMD_TIMEOUT" "$ULPCTL_BIN" "$@" --socket "$SOCK" 2>&1 </dev/null) ||
		rc=$?
	t1=$(now_us)
	ULPCTL_US=$((t1 - t0))
	[ "$rc" -eq 0 ] || fail "ulpctl $* exited $rc: $out"
}

# field KEY LINE: the value of "KEY=value" in a flattened line.
field()
{
	local re="(^| )$1=([^ ]*)"
	[[ $2 =~ $re ]] || fail "no '$1' in: $2"
	printf '%s' "${BASH_REMATCH[2]}"
}

# median / maximum of integers (one per argument).
median()
{
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

maximum()
{
	printf '%s\n' "$@" | sort -n | tail -n 1
}

# fmt_us MICROSECONDS: "123 µs" below 10 ms, "12.3 ms" above.
fmt_us()
{
	awk -v u="$1" 'BEGIN { if (u == "-") print "-"; else if (u < 10000) printf "%d µs\n", u;
		else printf "%.1f ms\n", u / 1000 }'
}
