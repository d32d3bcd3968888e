#!/usr/bin/env bash
# injection_stress: ulp stops threads that are inside malloc() and inside
# the dynamic loader (dlopen/dlclose in a loop).  200 apply/revert cycles
# on one such process, then a first apply (the runtime injection) into 20
# fresh ones.  Every ulpctl call is bounded by 30 s: a deadlock fails.
. "$(dirname "$0")/lib.sh"

CMD_TIMEOUT=30
PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"
start_ulpd

step "200 apply/revert cycles under malloc and dlopen load"
start_target t target_basic --hammer-malloc 4 --hammer-dlopen 2
pid=$(target_pid t)
expect_reply t "call 5" "compute(5)=6"
for round in $(seq 1 200); do
	run_ulpctl apply "$PATCH" -p "$pid"
	[ "$RC" -eq 0 ] || fail "apply #$round exited $RC: $ERR"
	if ((round % 50 == 1)); then
		expect_reply t "call 5" "compute(5)=15"
	fi
	run_ulpctl revert compute_fix -p "$pid"
	[ "$RC" -eq 0 ] || fail "revert #$round exited $RC: $ERR"
	((round % 20)) || log "$round cycles, ${SECONDS}s"
	pid_alive "$pid" || fail "target died in cycle $round"
done
expect_reply t "call 5" "compute(5)=6"
stop_target t

step "first apply (injection) into 20 fresh processes"
for i in $(seq 1 20); do
	start_target fresh target_basic --hammer-malloc 2 --hammer-dlopen 1
	fpid=$(target_pid fresh)
	run_ulpctl apply "$PATCH" -p "$fpid"
	[ "$RC" -eq 0 ] || fail "injection #$i (pid $fpid) exited $RC: $ERR"
	expect_reply fresh "call 5" "compute(5)=15"
	run_ulpctl revert compute_fix -p "$fpid"
	[ "$RC" -eq 0 ] || fail "revert in fresh process #$i exited $RC: $ERR"
	expect_reply fresh "call 5" "compute(5)=6"
	stop_target fresh
done

test_done
