#!/usr/bin/env bash
# displaced_bytes: threads stopped inside the bytes the entry jump
# overwrites are handled (DESIGN.md, "How patching works", step 4).
#
# fill() (tests/targets/fill.c) is "xor %eax,%eax; rep stosb; nop; ret":
# two --filler threads spend most of their time on the rep stosb at
# entry+2 zeroing 64 MiB, so whenever ulp writes the entry jump one of them
# is almost always there, inside the 5 displaced bytes.  On apply ulp must
# move such a thread to the relocated copy of that instruction in the
# trampoline (ulp_move_out_of_displaced, run once the int3 is in place or,
# as integration.displaced_bytes_stop_all, with every thread stopped); on
# revert a thread running the trampoline's copy must be moved back to its
# twin in the original before the slot goes away (ulp_move_out_of_slot).
#
# What breaks it: a thread resumed at entry+2 after the jmp rel32 is
# written executes the middle of the jump (the target dies of SIGSEGV or
# SIGILL, or runs garbage and fills wrongly: fillcheck bad > 0); a thread
# left in the trampoline when the slot is unmapped dies; a thread moved to
# the wrong instruction (past the rep stosb, or with the count lost) leaves
# the buffer partly filled (bad > 0).  Checked in a copy of the engine:
# without the move on apply the target dies of SIGSEGV in apply #1;
# without the move on revert it dies in revert #1 or #2.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_fill.so
ROUNDS=20
need_file "$PATCH"
start_ulpd
start_target t target_basic --filler 2
pid=$(target_pid t)

# fillcheck=ok calls=K min=M bad=B new=N -> FC_CALLS FC_MIN FC_BAD FC_NEW
fillcheck()
{
	send_cmd t fillcheck
	[[ $REPLY =~ ^fillcheck=(ok|BAD)\ calls=([0-9]+)\ min=([0-9]+)\ bad=([0-9]+)\ new=([0-9]+)$ ]] ||
		fail "fillcheck answered '$REPLY'"
	FC_CALLS=${BASH_REMATCH[2]} FC_MIN=${BASH_REMATCH[3]}
	FC_BAD=${BASH_REMATCH[4]} FC_NEW=${BASH_REMATCH[5]}
	[ "$FC_BAD" -eq 0 ] || fail "fill() left non-zero bytes $FC_BAD times: $REPLY"
}

# every filler thread has done at least $1 fills
fillers_reached()
{
	fillcheck
	[ "$FC_MIN" -ge "$1" ]
}

step "original code"
expect_reply t fillcall "fill()=0"
snapshot_target t orig fill
read -r _ _ size bytes < <(snapshot_code t orig)
# The layout this test relies on: rep stosb at entry+2, 6 bytes in all.
assert_eq "$bytes" 31c0f3aa90c3 "bytes of fill() (xor; rep stosb; nop; ret)"
assert_eq "$size" 6 "size of fill()"
wait_until "both filler threads to fill" "$WAIT_TIMEOUT" fillers_reached 2
log "before: $REPLY"
start_calls=$FC_CALLS

for round in $(seq 1 "$ROUNDS"); do
	run_ulpctl apply "$PATCH" -p "$pid"
	[ "$RC" -eq 0 ] || fail "apply #$round exited $RC: $ERR"
	pid_alive "$pid" || fail "target died applying (round $round)"
	send_cmd t fillcall
	assert_eq "$REPLY" "fill()=1" "fill() after apply #$round"
	run_ulpctl revert fill_fix -p "$pid"
	[ "$RC" -eq 0 ] || fail "revert #$round exited $RC: $ERR"
	pid_alive "$pid" || fail "target died reverting (round $round)"
	send_cmd t fillcall
	assert_eq "$REPLY" "fill()=0" "fill() after revert #$round"
	fillcheck
	((round % 5)) || log "$round rounds: $REPLY"
done

step "after $ROUNDS rounds"
fillcheck
before_min=$FC_MIN
[ "$FC_NEW" -gt 0 ] || fail "the filler threads never ran the patched fill(): $REPLY"
[ "$FC_CALLS" -gt "$start_calls" ] || fail "no fill() done during the rounds: $REPLY"
log "$REPLY"
# Both threads still fill correctly (none stuck, none lost).
wait_until "both filler threads to go on filling" "$WAIT_TIMEOUT" fillers_reached $((before_min + 3))
log "$REPLY"
snapshot_target t reverted fill
assert_same_code t orig reverted
assert_no_patches "$pid"

test_done
