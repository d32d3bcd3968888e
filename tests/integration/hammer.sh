#!/usr/bin/env bash
# hammer: 16 threads call compute() in a tight loop while the patch is
# applied and reverted 100 times.  Every call returns either the old or
# the new result (never garbage, never a crash), the process lives, and
# after a final apply every thread ends up running the new code.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"
start_ulpd
start_target t target_basic --threads 16
pid=$(target_pid t)
expect_reply t "call 5" "compute(5)=6"
snapshot_target t orig compute

for round in $(seq 1 100); do
	run_ulpctl apply "$PATCH" -p "$pid"
	[ "$RC" -eq 0 ] || fail "apply #$round exited $RC: $ERR"
	run_ulpctl revert compute_fix -p "$pid"
	[ "$RC" -eq 0 ] || fail "revert #$round exited $RC: $ERR"
	((round % 10)) || log "$round cycles, ${SECONDS}s"
	pid_alive "$pid" || fail "target died in cycle $round"
done
expect_reply t "call 5" "compute(5)=6"
send_cmd t values
[[ $REPLY =~ ^values=(6|15|6,15)$ ]] || fail "threads saw unexpected results: $REPLY"
log "$REPLY"
snapshot_target t reverted compute
assert_same_code t orig reverted

step "final apply: all threads reach the new code"
ulpctl_ok apply "$PATCH" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
saw_15()
{
	send_cmd t values
	[[ $REPLY == *15* ]]
}
wait_until "the busy threads to return 15" "$WAIT_TIMEOUT" saw_15
[[ $REPLY =~ ^values=(15|6,15)$ ]] || fail "threads saw unexpected results: $REPLY"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"

test_done
