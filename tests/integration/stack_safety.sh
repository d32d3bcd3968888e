#!/usr/bin/env bash
# stack_safety: no thread runs a new version while its own stack still holds
# an old one (DESIGN.md, "How patching works", step 5: per-thread
# consistency, not a global switch), in both directions.
#
# patch_gate.so changes value_fn (x+1 -> x+1000) and gate / gate_callee
# (value_fn(x) -> value_fn(x)+500000); see tests/targets/gate.c.  A thread
# is parked inside the old gate(7) (blocked in read() with gate's frame on
# its stack; for gate_callee one frame deeper, in the unpatched
# block_here()) while `ulpctl apply` runs in the background.  Then:
#   - the main thread, whose stack holds nothing patched, switches: its
#     value_fn(5) gives 1005 while the apply is still going on;
#   - the apply does not complete while the parked thread holds the old
#     gate on its stack;
#   - once released, the parked thread finishes the old gate with the OLD
#     value_fn: 8.  The old gate calls value_fn through its patched entry,
#     so an engine that switches that thread early (or every thread at
#     once) gives 1007, old gate + new value_fn: a mixed result;
#   - then the apply completes with exit 0 and every call is new (501007).
# The same in reverse for revert: a thread parked in the NEW gate finishes
# with the new value_fn (501007, not 500008) and the revert waits for it.
#
# What breaks it: a transition that flips threads without unwinding their
# stacks (or ignores frames above the top one, as the gate_callee case
# checks), a global switch, a slot that ignores the thread's state, or a
# transition that completes while a thread still runs old code.  Checked in
# a copy of the engine: with every thread switched without its stack being
# checked, the gate case fails (apply complete at once, result 1007); with
# only the two innermost frames checked, the gate apply passes (read, gate)
# but the gate_callee apply fails the same way (read, block_here,
# gate_callee), and the gate revert kills the target (the new gate sits
# under a helper of the patch, which is unloaded while still running).
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_gate.so
need_file "$PATCH"
start_ulpd

# The parked thread is blocked in read(): some thread other than the main
# one sits in syscall 0.
parked()
{
	local pid=$1 task
	for task in /proc/"$pid"/task/*; do
		[ "${task##*/}" != "$pid" ] || continue
		[[ $(cat "$task/syscall" 2>/dev/null) == "0 "* ]] && return 0
	done
	return 1
}

value_is()
{
	send_cmd "$1" "value 5"
	[ "$REPLY" = "value_fn(5)=$2" ]
}

gate_finished()
{
	send_cmd "$1" gateresult
	[ "$REPLY" != gateresult=pending ]
}

# parked_transition NAME BLOCK_CMD FUNC VERB HELD HELD_RESULT MIXED_RESULT
#   MAIN_VALUE ULPCTL_ARGS...: park a thread in the HELD ("old" / "new")
# version of FUNC, run `ulpctl ULPCTL_ARGS` (VERB: apply / revert) in the
# background, see the main thread switch (value_fn(5) = MAIN_VALUE) while
# the ulpctl waits, release the thread: it must return HELD_RESULT (its
# FUNC with its own value_fn), never MIXED_RESULT (its FUNC with the
# other value_fn); only then may the ulpctl complete, with exit 0.
parked_transition()
{
	local name=$1 block=$2 func=$3 verb=$4 held=$5 good=$6 mixed=$7 main_value=$8 pid early=
	shift 8
	pid=$(target_pid "$name")

	step "$func: $verb while a thread is parked in the $held $func"
	expect_reply "$name" "$block 7" "$block=started"
	wait_until "the $func thread to block in read()" "$WAIT_TIMEOUT" parked "$pid"
	bg_ulpctl_start "$verb-$name" "$@"
	# The transition has started and the main thread has switched.
	wait_until "the main thread to switch (value_fn(5)=$main_value)" "$CMD_TIMEOUT" \
		value_is "$name" "$main_value"
	log "$name: value 5 -> $REPLY (transition under way)"
	sleep 1
	pid_alive "$BG_PID" ||
		early="$verb completed while a thread still had the $held $func on its stack: $(cat "$BG_OUT.out" "$BG_OUT.err")"
	expect_reply "$name" gateresult gateresult=pending
	expect_reply "$name" release release=ok
	wait_until "the parked $func to return" "$WAIT_TIMEOUT" gate_finished "$name"
	if [ "$REPLY" = "gateresult=$mixed" ]; then
		fail "${early:+$early; }parked thread ran the $held $func with the other value_fn ($mixed): switched while the $held $func was on its stack"
	fi
	[ "$REPLY" = "gateresult=$good" ] ||
		fail "parked thread returned '$REPLY', expected gateresult=$good ($held $func, $held value_fn)"
	log "$name: parked thread: $held $func + $held value_fn ($good)"
	[ -z "$early" ] || fail "$early"
	bg_ulpctl_finish
	[ "$BG_RC" -eq 0 ] || fail "$verb exited $BG_RC after the thread left the $held $func"
}

# run_case NAME BLOCK_CMD CALL_CMD FUNC: the whole story for one gate.
run_case()
{
	local name=$1 block=$2 call=$3 func=$4 pid
	start_target "$name" target_basic
	pid=$(target_pid "$name")

	step "$func: original"
	expect_reply "$name" "value 5" "value_fn(5)=6"
	expect_reply "$name" "$call 7" "$func(7)=8"
	snapshot_target "$name" orig value_fn gate gate_callee

	parked_transition "$name" "$block" "$func" apply old 8 1007 1005 \
		apply "$PATCH" -p "$pid" --timeout 60
	assert_contains "$(cat "$BG_OUT.out")" "applied patch 'gate_fix' to process $pid" "apply output"
	expect_reply "$name" "value 5" "value_fn(5)=1005"
	expect_reply "$name" "gatecall 7" "gate(7)=501007"
	expect_reply "$name" "calleecall 7" "gate_callee(7)=501007"

	parked_transition "$name" "$block" "$func" revert new 501007 500008 6 \
		revert gate_fix -p "$pid"
	assert_contains "$(cat "$BG_OUT.out")" "reverted patch 'gate_fix' in process $pid" "revert output"
	expect_reply "$name" "value 5" "value_fn(5)=6"
	expect_reply "$name" "gatecall 7" "gate(7)=8"
	expect_reply "$name" "calleecall 7" "gate_callee(7)=8"
	snapshot_target "$name" reverted value_fn gate gate_callee
	assert_same_code "$name" orig reverted
	assert_no_patches "$pid"
	stop_target "$name"
}

run_case g blockgate gatecall gate
run_case c blockcallee calleecall gate_callee

test_done
