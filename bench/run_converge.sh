#!/usr/bin/env bash
# run_converge.sh - how long a transition takes to converge when the
# threads spend about 90% of their time inside the function being changed,
# against the global stop-the-world safety check a tool without per-thread
# consistency needs, on the same target in the same run.
#
#   bench/run_converge.sh [-k K] [-t N] [-m "duty busy"] [-s SECONDS] [-b "1 2 4"]
#
# For each workload (-m): start ulp_bench_converge with N workers (default
# 64) that each spend 90 us of every 100 us of their time inside cv_work()
# (bench/converge.c), then
#   1. ulp_bench_stop_check: stop every thread at once, unwind them all, and
#      succeed only if no thread has cv_work() on its stack; else resume
#      all and retry 10 ms later, for at most -s seconds (default 10);
#   2. ulpd (ULP_TRACE=1 in its environment) applies patch_converge.so once
#      (this first apply also injects the runtime; reported apart) and
#      reverts it, then K more apply/revert cycles (default 5) through
#      ulp_bench_req.
# Per apply or revert:
#   convergence   from the moment threads can first reach the other version
#                 (ulpd's first runtime call after "loaded, slots built", or
#                 "attached" for a revert: the serialisation right after the
#                 int3s went in; a thread that hits one is sent to the
#                 dispatch, where it switches itself) to "attempt done: 1"
#                 (every thread switched), across attempts made in the
#                 background while the transition was pending;
#   transition    transition_us of the reply: the time inside attempts made
#                 during the request (background attempts are not in it);
#   last switch   when the target's last worker ran the other version for the
#                 first time, from the same start (the target and
#                 the trace both read CLOCK_MONOTONIC), and the spread from
#                 its first to its last worker;
#   stopped       threads ulpd's passes had to stop and check ("pass: N
#                 threads to check", summed): the others switched themselves;
#   longest stop  longest_stop_us of the reply; wall: the request's wall time.
# The target's "round" (5 times per target): how long until every worker
# has started a call again, a floor under any method that needs each thread
# to run.  Then, for -b thread counts (default "1 2 4", duty sizing), the
# stop-the-world check alone, to show how its chance falls with N.
#
# Workloads:
#   duty  workers also sleep, inside and outside the function in the same
#         proportion, so that all of them together use half the CPUs (duty
#         nproc / (2 N)): 90 us spin + 5.7 ms sleep inside, 10 us spin +
#         0.63 ms sleep outside at N=64 on 2 CPUs;
#   busy  workers never sleep: 64 CPU-bound threads on nproc CPUs, so every
#         thread (and ulpd) gets a CPU only every few tens of ms; figures
#         then measure the scheduler more than any method.
#
# BENCH_TRANSITION_TIMEOUT (seconds, default 60) is each apply's timeout;
# BENCH_ULPD_PREFIX (e.g. "chrt -f 10") is put before ulpd and before
# ulp_bench_stop_check.  Prints markdown tables on stdout; progress and raw
# figures on stderr.
USER_PREFIX=${BENCH_ULPD_PREFIX:-}
BENCH_ULPD_PREFIX="env ULP_TRACE=1${USER_PREFIX:+ $USER_PREFIX}"
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

K=5
N=64
MODES="duty busy"
STOP_TIMEOUT=10
BASE_THREADS="1 2 4"
while getopts "k:t:m:s:b:" opt; do
	case $opt in
	k) K=$OPTARG ;;
	t) N=$OPTARG ;;
	m) MODES=$OPTARG ;;
	s) STOP_TIMEOUT=$OPTARG ;;
	b) BASE_THREADS=$OPTARG ;;
	*) fail "usage: $0 [-k K] [-t N] [-m \"duty busy\"] [-s SECONDS] [-b \"1 2 4\"]" ;;
	esac
done
NPROC=$(nproc)
TR_TIMEOUT=${BENCH_TRANSITION_TIMEOUT:-60}
REQ_TIMEOUT=$((TR_TIMEOUT + 120))
PATCH=$BENCH_BIN/patch_converge.so
need_file "$BENCH_BIN/ulp_bench_converge"
need_file "$BENCH_BIN/ulp_bench_stop_check"
need_file "$PATCH"

# Target options for a workload and n workers.
target_args()
{
	local mode=$1 n=$2
	case $mode in
	busy) printf '%s' "--threads $n" ;;
	duty)
		printf '%s' "--threads $n --duty $(awk -v n="$n" -v c="$NPROC" 'BEGIN {
			d = c / (2 * n); if (d > 1) d = 1; printf "%.6f", d }')"
		;;
	*) fail "unknown workload $mode" ;;
	esac
}

# stop_check PID: run the stop-the-world check; its line in CHECK (or
# "failed: ...").  Returns 1 if it could not run.
stop_check()
{
	local rc=0
	# shellcheck disable=SC2086 # the prefix is words
	CHECK=$(timeout -k 5 $((STOP_TIMEOUT + 90)) $USER_PREFIX \
		"$BENCH_BIN/ulp_bench_stop_check" "$1" cv_work "$STOP_TIMEOUT" 10 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || {
		CHECK="failed: $CHECK"
		return 1
	}
}

# sched_round: ROUND, "median (max)" over 5 "round" commands: how long
# until every worker has started a call again, a floor under any method.
sched_round()
{
	local i
	local -a r=()
	for ((i = 0; i < 5; i++)); do
		send_cmd t round
		r+=("$(field max_us "$REPLY")")
		sleep 0.1
	done
	log "scheduler round (us): ${r[*]}"
	ROUND=$(fmt_med_max "${r[@]}")
}

# check_row MODE N SHARE: a row of the stop-the-world table from CHECK and ROUND.
check_row()
{
	local result
	if [[ $CHECK == failed* ]]; then
		printf '| %s | %s | %s | %s | %s |||||\n' "$1" "$2" "$3" "$ROUND" "$CHECK"
		return
	fi
	if [ "$(field converged "$CHECK")" = 1 ]; then
		result="converged after $(fmt_us "$(($(field elapsed_ms "$CHECK") * 1000))")"
	else
		result="**did not converge** in ${STOP_TIMEOUT} s"
	fi
	printf '| %s | %s | %s | %s | %s | %s | %s (%s) | %s / %s | %s |\n' "$1" \
		"$2 (+$(($(field threads "$CHECK") - $2)) others)" "$3" "$ROUND" "$result" \
		"$(field attempts "$CHECK")" "$(fmt_us "$(field hold_p50_us "$CHECK")")" \
		"$(fmt_us "$(field hold_max_us "$CHECK")")" "$(field blocked_min "$CHECK")" \
		"$(field blocked_p50 "$CHECK")" "$(field unwind_ns_per_frame "$CHECK")"
}

# trace_since LINE: from ulpd's trace after line LINE of ulpd.log, sets
# TR_START (CLOCK_MONOTONIC us of the first runtime call after "loaded,
# slots built" or, for a revert, "attached", before the first "attempt":
# the serialisation right after the int3s went in, from when threads can
# enter the new code), TR_DONE ("attempt done: 1"), TR_ATTEMPTS and
# TR_STOPPED (threads the passes checked).
trace_since()
{
	local out
	out=$(awk -v skip="$1" 'NR > skip && $1 == "ulp-trace" {
		ts = $2; sub(/\./, "", ts)
		if ($3 == "cpu") { $3 = ""; $4 = ""; $0 = $0 }
		if (start == "" && ($3 == "attached" || ($3 == "loaded," && $4 == "slots"))) cand = ""
		if (start == "" && $3 == "runtime" && $4 == "call" && cand == "") cand = ts
		if ($3 == "attempt" && NF == 3 && start == "") start = cand == "" ? ts : cand
		if ($3 == "attempt" && $4 == "done:") { att++; if ($5 == 1 && done == "") done = ts }
		if ($3 == "pass:") stopped += $4
	} END { printf "%s %s %d %d\n", start == "" ? "-" : start, done == "" ? "-" : done, att, stopped }' \
		"$TMP/ulpd.log")
	read -r TR_START TR_DONE TR_ATTEMPTS TR_STOPPED <<<"$out"
	if [ "$TR_START" = - ] || [ "$TR_DONE" = - ]; then
		fail "no complete transition in ulpd's trace: $out"
	fi
}

# op_once apply|revert: one operation, measured; sets CONV TRANS APPLAST
# SPREAD ATT STOPPED LSTOP WALL.  Returns 1 (reason in ERROR) on failure.
op_once()
{
	local op=$1 json want off
	if [ "$op" = apply ]; then
		json="{\"cmd\":\"apply\",\"pid\":$PID,\"patch\":\"$PATCH\",\"timeout\":$TR_TIMEOUT}"
		want="v1=0 v2=$N "
	else
		json="{\"cmd\":\"revert\",\"pid\":$PID,\"name\":\"bench_converge\"}"
		want="v1=$N v2=0 "
	fi
	send_cmd t mark
	off=$(wc -l <"$TMP/ulpd.log")
	if ! try_request "$json"; then
		ERROR=$REPLY
		return 1
	fi
	WALL=$(field wall_us "$REPLY")
	TRANS=$(field transition_us "$REPLY")
	LSTOP=$(field longest_stop_us "$REPLY")
	send_cmd t report
	[[ $REPLY == "report $want"* ]] || fail "after $op, not every worker runs the expected version: $REPLY"
	[ "$(field stale "$REPLY")" = 0 ] || log "warning: stale workers: $REPLY"
	trace_since "$off"
	CONV=$((TR_DONE - TR_START))
	APPLAST=$(($(field last_at_us "$REPLY") - TR_START))
	SPREAD=$(($(field last_at_us "$REPLY") - $(field first_at_us "$REPLY")))
	ATT=$TR_ATTEMPTS
	STOPPED=$TR_STOPPED
	log "$MODE $op: convergence ${CONV}us (transition_us $TRANS, $ATT attempts, $STOPPED threads checked by ulpd)," \
		"last worker switched ${APPLAST}us after the start, spread ${SPREAD}us, longest stop ${LSTOP}us, wall ${WALL}us; $REPLY"
}

# measure apply|revert WHAT: op_once; if it fails, logs why and puts a
# failed row for WHAT in ROWS instead (the script goes on to the next
# workload), and returns 1.
measure()
{
	op_once "$1" && return
	log "$MODE: $2 failed: $ERROR"
	ROWS+=("| $MODE | $2 | failed: ${ERROR##*error=} ||||||||")
	return 1
}

# fmt_med_max VALUES...: "median (max)", formatted.
fmt_med_max()
{
	printf '%s (%s)' "$(fmt_us "$(median "$@")")" "$(fmt_us "$(maximum "$@")")"
}

# run_mode MODE: the stop-the-world row in CHECK_ROWS, ulp's rows in ROWS.
run_mode()
{
	local args i nthreads share op
	local -a a_conv=() a_trans=() a_last=() a_spread=() a_att=() a_stop=() a_lstop=() a_wall=()
	local -a r_conv=() r_trans=() r_last=() r_spread=() r_att=() r_stop=() r_lstop=() r_wall=()
	args=$(target_args "$MODE" "$N")
	# shellcheck disable=SC2086 # args are words
	start_target t ulp_bench_converge $args
	PID=${TPID[t]}
	send_cmd t check
	[ "$REPLY" = "check version=1" ] || fail "unexpected before patching: $REPLY"
	log "$MODE: pid $PID, $args, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	sleep 1
	send_cmd t stats
	share="$(field in_pct "$REPLY") %"
	sched_round

	# 1. the stop-the-world check, before ulpd ever touches the target.
	stop_check "$PID" || log "$MODE: stop_check failed: $CHECK"
	log "$MODE N=$N: $CHECK"
	CHECK_ROWS+=("$(check_row "$MODE" "$N" "$share")")

	# 2. first apply (injects the runtime), and its revert.
	start_ulpd
	for op in apply revert; do
		measure $op "first $op" || return
		if [ "$op" = apply ]; then
			ROWS+=("| $MODE | first apply (injects the runtime) | $(fmt_us "$CONV") | $(fmt_us "$TRANS") | $(fmt_us "$APPLAST") | $(fmt_us "$SPREAD") | $ATT | $STOPPED | $(fmt_us "$LSTOP") | $(fmt_us "$WALL") |")
		fi
	done
	nthreads=$(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l)

	# 3. K apply/revert cycles.
	for ((i = 1; i <= K; i++)); do
		sleep 0.2
		for op in apply revert; do
			measure $op "$op $i of $K" || return
			if [ "$op" = apply ]; then
				a_conv+=("$CONV") a_trans+=("$TRANS") a_last+=("$APPLAST") a_spread+=("$SPREAD")
				a_att+=("$ATT") a_stop+=("$STOPPED") a_lstop+=("$LSTOP") a_wall+=("$WALL")
			else
				r_conv+=("$CONV") r_trans+=("$TRANS") r_last+=("$APPLAST") r_spread+=("$SPREAD")
				r_att+=("$ATT") r_stop+=("$STOPPED") r_lstop+=("$LSTOP") r_wall+=("$WALL")
			fi
		done
	done
	send_cmd t stats
	log "$MODE: $REPLY; $nthreads threads in the target"
	ROWS+=("| $MODE | apply, $K cycles | **$(fmt_med_max "${a_conv[@]}")** | $(fmt_med_max "${a_trans[@]}") | $(fmt_med_max "${a_last[@]}") | $(fmt_med_max "${a_spread[@]}") | $(median "${a_att[@]}") | $(median "${a_stop[@]}") of $nthreads | $(fmt_med_max "${a_lstop[@]}") | $(fmt_med_max "${a_wall[@]}") |")
	ROWS+=("| $MODE | revert, $K cycles | **$(fmt_med_max "${r_conv[@]}")** | $(fmt_med_max "${r_trans[@]}") | $(fmt_med_max "${r_last[@]}") | $(fmt_med_max "${r_spread[@]}") | $(median "${r_att[@]}") | $(median "${r_stop[@]}") of $nthreads | $(fmt_med_max "${r_lstop[@]}") | $(fmt_med_max "${r_wall[@]}") |")
}

ROWS=()
CHECK_ROWS=()
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for MODE in $MODES; do
	run_mode
	[ -n "${TPID[t]:-}" ] && quit_target t
	stop_ulpd
done

# The stop-the-world check alone with fewer workers (duty sizing).
MODE=duty
for n in $BASE_THREADS; do
	# shellcheck disable=SC2046 # args are words
	start_target t ulp_bench_converge $(target_args duty "$n")
	sleep 1
	send_cmd t stats
	share="$(field in_pct "$REPLY") %"
	sched_round
	stop_check "${TPID[t]}" || log "stop_check N=$n failed: $CHECK"
	log "duty N=$n: $CHECK"
	CHECK_ROWS+=("$(check_row duty "$n" "$share")")
	quit_target t
done

report <<TABLE
Stop-the-world safety check (\`ulp_bench_stop_check\`: interrupt every thread, unwind all, retry 10 ms later until no thread has \`cv_work()\` on its stack, at most ${STOP_TIMEOUT} s):

| workload | workers (other threads) | time inside \`cv_work()\` | every worker runs again (scheduler round), median (max) | result | attempts | stop of all threads per attempt, median (max) | threads blocking per attempt, min / median | unwind ns per frame (in this check) |
|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${CHECK_ROWS[@]}")

ulp's per-thread transition, same targets ($N workers), median (max) over $K cycles:

| workload | operation | **convergence** (other version reachable → ulpd has every thread switched) | transition_us (attempts during the request) | last worker switched (seen by the target), after the start | spread, first → last worker switched | attempts | threads ulpd stopped to check (of all threads) | longest stop | request wall |
|---|---|---|---|---|---|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")

$NPROC CPUs, load average $LOAD0 before the run, $(cut -d' ' -f1-3 /proc/loadavg) after${USER_PREFIX:+; ulpd and the check run as \`$USER_PREFIX ...\`}.
TABLE
