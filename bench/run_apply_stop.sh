#!/usr/bin/env bash
# run_apply_stop.sh - how long applying a patch stops the threads of a busy
# process, seen by ulpd and seen by the application.
#
#   bench/run_apply_stop.sh [-k K] [-t "1 64 512"] [-m "busy duty"]
#
# For each workload (-m) and thread count N (-t): start ulpd and
# ulp_bench_apply_stop with N workers calling as_work() (and 2 threads
# asleep in clock_nanosleep() and read()), then
#   1. a 1 s baseline window with no ulp activity (the target's own lateness),
#      and ulp_bench_stop_all: the kernel's floor under a stop-all, ptrace
#      stopping and resuming every thread 20 times with nothing in between;
#   2. the first apply, which also injects the runtime (reported apart);
#   3. K more apply/revert cycles; the apply is a request to ulpd through
#      ulp_bench_req, whose reply carries longest_stop_us and transition_us;
#   4. 3 more apply/revert cycles with ulpctl itself, for its wall time.
# Around every apply the target reports its workers' largest lateness
# (see apply_stop.c): the stop as the application observes it.  Reverts
# run while the workers are paused (off as_work()): ulpd cannot restore a
# function's entry while a thread is inside its slot, and with many busy
# threads one nearly always is (see docs/benchmarks.md).
#
# Workloads:
#   busy  every worker spins, never sleeps: N workers on nproc CPUs, so
#         beyond nproc workers the scheduler alone already makes them wait.
#   duty  every worker runs 200 us then sleeps, sized so that all workers
#         together use half the CPUs: lateness is then the stop itself, not
#         the wait for a CPU.
#
# BENCH_TRANSITION_TIMEOUT (seconds, default 120) bounds each transition;
# a request gets that plus 180 s before ulpd is given up on.
# Prints one markdown table on stdout; progress and raw figures on stderr.
# A configuration that fails is reported in its row; the others still run.
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

K=10
THREADS="1 64 512"
MODES="busy duty"
while getopts "k:t:m:" opt; do
	case $opt in
	k) K=$OPTARG ;;
	t) THREADS=$OPTARG ;;
	m) MODES=$OPTARG ;;
	*) fail "usage: $0 [-k K] [-t \"1 64 512\"] [-m \"busy duty\"]" ;;
	esac
done
NPROC=$(nproc)
BUSY_US=200
TR_TIMEOUT=${BENCH_TRANSITION_TIMEOUT:-120}
REQ_TIMEOUT=$((TR_TIMEOUT + 180))
PATCH=$BENCH_BIN/patch_apply_stop.so
need_file "$BENCH_BIN/ulp_bench_apply_stop"
need_file "$PATCH"

# Target options for a workload and N workers.
target_args()
{
	local mode=$1 n=$2 sleep_us
	case $mode in
	busy) printf '%s' "--threads $n --sleepers 2" ;;
	duty)
		# duty cycle d = min(1/2, nproc / (2 n)); sleep = busy * (1 - d) / d
		sleep_us=$(awk -v n="$n" -v c="$NPROC" -v b="$BUSY_US" 'BEGIN {
			d = c / (2 * n); if (d > 0.5) d = 0.5; printf "%d", b * (1 - d) / d }')
		printf '%s' "--threads $n --busy-us $BUSY_US --sleep-us $sleep_us --sleepers 2"
		;;
	*) fail "unknown workload $mode" ;;
	esac
}

# One apply through ulp_bench_req inside a lateness window; sets STOP, TRANS,
# WALL, LATE (app's largest lateness), LATE50 (median over workers).
# Returns 1 (reason in ERROR) if the apply failed.
apply_once()
{
	send_cmd t reset
	if ! try_request "{\"cmd\":\"apply\",\"pid\":$PID,\"patch\":\"$PATCH\",\"timeout\":$TR_TIMEOUT}"; then
		ERROR=$REPLY
		return 1
	fi
	STOP=$(field longest_stop_us "$REPLY")
	TRANS=$(field transition_us "$REPLY")
	WALL=$(field wall_us "$REPLY")
	send_cmd t gaps
	LATE=$(field max_us "$REPLY")
	LATE50=$(field p50_us "$REPLY")
	[ "$(field stale "$REPLY")" = 0 ] || log "warning: stale workers: $REPLY"
}

# Revert with the workers paused; REVERT_US its ulpctl wall time.
revert_once()
{
	send_cmd t pause
	[ "$REPLY" = paused ] || fail "pause: $REPLY"
	ulpctl revert bench_apply_stop -p "$PID"
	REVERT_US=$ULPCTL_US
	send_cmd t resume
}

# run_config MODE N: one row of the table in ROW.
run_config()
{
	local mode=$1 n=$2 args i base floor f_stop f_wall f_late
	local -a stops=() walls=() lates=() reverts=() trans=() ctl=()
	args=$(target_args "$mode" "$n")
	start_ulpd
	# shellcheck disable=SC2086 # args are words
	start_target t ulp_bench_apply_stop $args
	PID=${TPID[t]}
	send_cmd t check
	[ "$REPLY" = "check as_work(5)=38" ] || fail "unexpected before patching: $REPLY"
	log "$mode N=$n: pid $PID, $args, load average $(cut -d' ' -f1-3 /proc/loadavg)"

	# 1. baseline: a 1 s window with no ulp activity.
	send_cmd t reset
	sleep 1
	send_cmd t gaps
	base=$(field max_us "$REPLY")
	log "$mode N=$n baseline 1 s: $REPLY"
	# shellcheck disable=SC2086 # the prefix is words
	if floor=$(timeout -k 5 150 ${BENCH_ULPD_PREFIX:-} "$BENCH_BIN/ulp_bench_stop_all" "$PID" 20 2>&1); then
		log "$mode N=$n $floor"
		floor="$(fmt_us "$(field held_p50_us "$floor")") ($(fmt_us "$(field held_max_us "$floor")"))"
	else
		log "$mode N=$n ulp_bench_stop_all failed: $floor"
		floor="failed"
	fi

	# 2. first apply: runtime injection + apply.
	if ! apply_once; then
		ROW="| $mode | $n | first apply failed: ${ERROR##*error=} ||||||||"
		log "$mode N=$n: first apply failed: $ERROR"
		return
	fi
	f_stop=$STOP f_wall=$WALL f_late=$LATE
	log "$mode N=$n first apply: stop=${STOP}us transition=${TRANS}us wall=${WALL}us late=${LATE}us (p50 ${LATE50}us)"
	send_cmd t check
	[ "$REPLY" = "check as_work(5)=26" ] || fail "patch not in effect: $REPLY"
	revert_once
	send_cmd t check
	[ "$REPLY" = "check as_work(5)=38" ] || fail "revert not in effect: $REPLY"

	# 3. K apply/revert cycles.
	for ((i = 1; i <= K; i++)); do
		sleep 0.2
		if ! apply_once; then
			log "$mode N=$n apply $i failed: $ERROR"
			ROW="| $mode | $n | apply $i of $K failed: ${ERROR##*error=} ||||||||"
			return
		fi
		stops+=("$STOP") walls+=("$WALL") lates+=("$LATE") trans+=("$TRANS")
		log "$mode N=$n apply $i: stop=${STOP}us transition=${TRANS}us wall=${WALL}us late=${LATE}us (p50 ${LATE50}us)"
		revert_once
		reverts+=("$REVERT_US")
	done

	# 4. ulpctl apply, wall time as a user sees it.
	for ((i = 1; i <= 3; i++)); do
		sleep 0.2
		ulpctl apply "$PATCH" -p "$PID" --timeout "$TR_TIMEOUT"
		ctl+=("$ULPCTL_US")
		revert_once
	done
	log "$mode N=$n ulpctl apply wall: ${ctl[*]} us"

	ROW="| $mode | $n | $(fmt_us "$f_stop") / $(fmt_us "$f_wall") / $(fmt_us "$f_late") | $(fmt_us "$(median "${stops[@]}")") ($(fmt_us "$(maximum "${stops[@]}")")) | $(fmt_us "$(median "${lates[@]}")") ($(fmt_us "$(maximum "${lates[@]}")")) | $(fmt_us "$base") | $floor | $(fmt_us "$(median "${walls[@]}")") | $(fmt_us "$(median "${ctl[@]}")") | $(fmt_us "$(median "${trans[@]}")") | $(fmt_us "$(median "${reverts[@]}")") |"
}

ROWS=()
for mode in $MODES; do
	for n in $THREADS; do
		ROW=
		run_config "$mode" "$n"
		ROWS+=("$ROW")
		printf '%s\n' "$ROW" >&2
		[ -n "${TPID[t]:-}" ] && quit_target t
		stop_ulpd
	done
done

report <<TABLE
| workload | threads | first apply, with runtime injection: ulpd longest stop / apply wall / app lateness | ulpd longest stop, median (max) | app lateness, median (max) | app lateness without ulp (1 s window) | bare ptrace stop-all + resume, median (max) | apply wall (request), median | ulpctl apply wall, median | transition, median | ulpctl revert wall (workers paused), median |
|---|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")

$K apply/revert cycles per row after the first apply, then 3 with ulpctl; $NPROC CPUs${BENCH_ULPD_PREFIX:+; ulpd run as \`$BENCH_ULPD_PREFIX ulpd\`}.
TABLE
