#!/usr/bin/env bash
# detach_no_trace: after apply and revert, nothing of ulp's ptrace work is
# left in the process: no thread traced or stopped, no pending signal, no
# EINTR seen by threads blocked in clock_nanosleep() / read() (nor the main
# thread's read of stdin), and the signal mask unchanged.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"
start_ulpd
start_target t target_basic --sleeper
pid=$(target_pid t)

expect_reply t "call 5" "compute(5)=6"
send_cmd t sigmask
mask_before=$REPLY
[ "$mask_before" != "sigmask=0000000000000000" ] || fail "target should block SIGUSR2"
ntasks_before=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)

# Every thread: not stopped, not traced, no signal pending.
untouched()
{
	local st f
	for st in /proc/"$pid"/task/*/status; do
		f=$(cat "$st" 2>/dev/null) || continue
		[[ $f =~ State:[[:space:]]+[tT] ]] && return 1
		[[ $f =~ TracerPid:[[:space:]]+0$'\n' ]] || return 1
		[[ $f =~ SigPnd:[[:space:]]+0+$'\n' ]] || return 1
		[[ $f =~ ShdPnd:[[:space:]]+0+$'\n' ]] || return 1
	done
	return 0
}

show_tasks()
{
	grep -H -E '^(State|TracerPid|SigPnd|ShdPnd)' /proc/"$pid"/task/*/status >&2 || true
}

for round in 1 2 3; do
	step "apply / revert, round $round"
	ulpctl_ok apply "$PATCH" -p "$pid"
	expect_reply t "call 5" "compute(5)=15"
	ulpctl_ok revert compute_fix -p "$pid"
	expect_reply t "call 5" "compute(5)=6"
done

step "no trace left"
on_failure show_tasks
# ulpctl returned, so ulpd is done with the process; allow the kernel a
# moment to settle the last detach.
wait_until "every thread to be untraced, running and without pending signals" 5 untouched
expect_reply t eintr "eintr=0"
expect_reply t sigmask "$mask_before"
# The sleeper and reader threads are still there (none died of a signal).
ntasks_after=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)
[ "$ntasks_after" -ge "$ntasks_before" ] ||
	fail "threads vanished: $ntasks_before before, $ntasks_after after"
# A little later still no EINTR (a sleeper restarted wrongly would show it).
sleep 0.5
expect_reply t eintr "eintr=0"
untouched || fail "a thread became traced, stopped or got a signal"

test_done
