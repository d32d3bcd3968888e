# shellcheck shell=bash disable=SC2034 # variables here are for the scripts
# lib.sh - sourced by the benchmark scripts (bench/run_*.sh).
#
# A temp dir, one ulpd, target programs driven through a FIFO, requests to
# ulpd and small statistics.  Every wait has a timeout; every process
# started here is tracked by PID and killed by PID on exit.
#
# Environment: ULP_BUILD (build tree, default: <repo>/build),
# BENCH_WAIT_TIMEOUT (seconds for a target's reply, default 60),
# BENCH_CMD_TIMEOUT (seconds for one request to ulpd, default 600),
# BENCH_KEEP_TMP=1 (keep the temp dir), BENCH_ULPD_PREFIX (a command put
# before ulpd, e.g. "chrt -f 10" to run it SCHED_FIFO).

set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ULP_BUILD=${ULP_BUILD:-$BENCH_DIR/../build}
ULP_BUILD=$(cd "$ULP_BUILD" && pwd)
ULPD_BIN=$ULP_BUILD/daemon/ulpd
ULPCTL_BIN=$ULP_BUILD/cli/ulpctl
ULP_RUNTIME=$ULP_BUILD/runtime/libulp-rt.so
BENCH_BIN=$ULP_BUILD/bench
WAIT_TIMEOUT=${BENCH_WAIT_TIMEOUT:-60}
CMD_TIMEOUT=${BENCH_CMD_TIMEOUT:-600}

BENCH_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ulp-$BENCH_NAME.XXXXXX")
SOCK=$TMP/ulpd.sock
ULPD_PID=
declare -a OTHER_PIDS=()
declare -A TPID=() TFD=() TOUT=() TLINES=()
REPLY=

log()
{
	printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2
}

fail()
{
	printf '[%s] FAIL: %s\n' "$BENCH_NAME" "$*" >&2
	exit 1
}

now_us()
{
	printf '%s' "${EPOCHREALTIME/./}"
}

pid_alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	stat=${stat%% *}
	[ "$stat" != Z ] && [ "$stat" != X ]
}

# wait_until DESC SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_until()
{
	local desc=$1 secs=$2
	shift 2
	local deadline=$(($(now_us) + secs * 1000000))
	until "$@"; do
		(($(now_us) <= deadline)) || fail "timed out after ${secs}s waiting for $desc"
		sleep 0.01
	done
}

# kill_pid PID [SIGNAL]: kill one process started here, by PID, and reap it.
kill_pid()
{
	local pid=$1 sig=${2:-KILL} i
	if [ "$sig" != KILL ]; then
		kill -"$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < 500; i++)); do
			pid_alive "$pid" || break
			sleep 0.02
		done
	fi
	kill -KILL "$pid" 2>/dev/null || true
	{ wait "$pid"; } 2>/dev/null || true
}

cleanup()
{
	local rc=$? name fd pid
	set +e
	trap - EXIT
	for name in "${!TPID[@]}"; do
		kill_pid "${TPID[$name]}" KILL
		fd=${TFD[$name]}
		exec {fd}>&-
	done
	for pid in "${OTHER_PIDS[@]}"; do
		kill_pid "$pid" KILL
	done
	[ -n "$ULPD_PID" ] && kill_pid "$ULPD_PID" TERM
	if [ "$rc" -ne 0 ] && [ -s "$TMP/ulpd.log" ]; then
		log "ulpd.log (last 20 lines):"
		tail -n 20 "$TMP/ulpd.log" >&2
	fi
	if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

need_file()
{
	[ -e "$1" ] || fail "missing $1 (build first: cmake --build $ULP_BUILD)"
}

ulpd_answers()
{
	pid_alive "$ULPD_PID" || fail "ulpd exited during start-up"
	[ -S "$SOCK" ] &&
		timeout -k 1 5 "$BENCH_BIN/ulp_bench_req" "$SOCK" '{"cmd":"status"}' >/dev/null 2>&1
}

start_ulpd()
{
	need_file "$ULPD_BIN"
	need_file "$ULP_RUNTIME"
	need_file "$BENCH_BIN/ulp_bench_req"
	mkdir -p "$TMP/state"
	# shellcheck disable=SC2086 # the prefix is words
	${BENCH_ULPD_PREFIX:-} "$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" \
		--runtime "$ULP_RUNTIME" </dev/null >>"$TMP/ulpd.log" 2>&1 &
	ULPD_PID=$!
	wait_until "ulpd to accept connections on $SOCK" "$WAIT_TIMEOUT" ulpd_answers
}

stop_ulpd()
{
	[ -n "$ULPD_PID" ] && kill_pid "$ULPD_PID" TERM
	ULPD_PID=
}

reply_arrived()
{
	local name=$1 want=$2 have
	have=$(wc -l <"${TOUT[$name]}")
	[ "$have" -ge "$want" ] && return 0
	pid_alive "${TPID[$name]}" && return 1
	have=$(wc -l <"${TOUT[$name]}")
	[ "$have" -ge "$want" ] && return 0
	fail "target $name (pid ${TPID[$name]}) died: $(tail -n 3 "$TMP/$name.err" 2>/dev/null)"
}

# start_target NAME [taskset -c CPUS] PROGRAM [ARGS...]: start PROGRAM with
# stdin from a FIFO held open here, stdout to $TMP/NAME.out; wait for
# "ready".  Its PID is in TPID[NAME].
start_target()
{
	local name=$1 fifo fd
	shift
	fifo=$TMP/$name.in
	rm -f "$fifo"
	mkfifo "$fifo"
	: >"$TMP/$name.out"
	"$@" <"$fifo" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	TPID[$name]=$!
	exec {fd}<>"$fifo"
	TFD[$name]=$fd
	TOUT[$name]=$TMP/$name.out
	TLINES[$name]=1
	wait_until "target $name to print 'ready'" "$WAIT_TIMEOUT" reply_arrived "$name" 1
	[ "$(head -n 1 "$TMP/$name.out")" = ready ] ||
		fail "target $name printed '$(head -n 1 "$TMP/$name.out")' instead of 'ready'"
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

stop_target()
{
	local name=$1 fd=${TFD[$1]}
	kill_pid "${TPID[$name]}" KILL
	exec {fd}>&-
	unset "TPID[$name]" "TFD[$name]" "TOUT[$name]" "TLINES[$name]"
}

# send_cmd NAME COMMAND [TIMEOUT]: send one line, wait for the one-line
# answer, leave it in REPLY.
send_cmd()
{
	local name=$1 cmd=$2 secs=${3:-$WAIT_TIMEOUT} want
	want=$((TLINES[$name] + 1))
	printf '%s\n' "$cmd" >&"${TFD[$name]}"
	wait_until "target $name to answer '$cmd'" "$secs" reply_arrived "$name" "$want"
	TLINES[$name]=$want
	REPLY=$(sed -n "${want}p" "${TOUT[$name]}")
}

# request JSON: one request to ulpd through ulp_bench_req; the flattened
# reply ("wall_us=.. ok=1 key=value ...") in REPLY.  Fails unless ok.
request()
{
	local rc=0
	REPLY=$(timeout -k 5 "$CMD_TIMEOUT" "$BENCH_BIN/ulp_bench_req" "$SOCK" "$1") || rc=$?
	[ "$rc" -eq 0 ] || fail "request $1 failed (exit $rc): $REPLY"
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
