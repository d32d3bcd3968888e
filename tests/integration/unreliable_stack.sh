#!/usr/bin/env bash
# unreliable_stack: a thread whose stack holds a frame without unwind
# information (assembly without CFI, JIT code) is never switched on the
# strength of that stack, neither by ulpd's checks nor by the runtime's
# self-switch at a function's entry: an unwinder guesses past such a frame
# (frame pointers, or "the outermost frame") and may skip a busy caller.
#
# klp_target's "nocfi start" parks a thread in read() inside
# klp_outer_func(); patch_klp_nocfi.so replaces klp_outer_func and
# klp_main_func together.  While the transition is stalled on that thread,
# it is released: the OLD klp_outer_func calls klp_main_func through
# klp_nocfi_call (no CFI).  At klp_main_func's entry the thread must not
# switch: it must get the old klp_main_func ("main:orig"), never the new
# one ("main:nocfi-patched", a mix).  Checked in a copy of the runtime that
# trusts such stacks: the thread switches there and this test fails.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_klp_nocfi.so
need_file "$PATCH"
start_ulpd
start_target n klp_target
pid=$(target_pid n)

expect_reply n "nocfi start" "nocfi start=ok"
send_cmd n "nocfi tid"
tid=${REPLY#nocfi tid=}
wait_until "the nocfi thread to block in read()" "$WAIT_TIMEOUT" task_in_read "$pid" "$tid"

ulpctl_ok apply "$PATCH" -p "$pid" --no-wait
# The main thread switches; the parked one, inside the old klp_outer_func, not.
wait_until "the main thread to switch" "$CMD_TIMEOUT" reply_is n "call main" "main=main:nocfi-patched"
sleep 1.5
assert_transition "$pid" klp_nocfi true

expect_reply n "nocfi release" "nocfi=main:orig"

# It has left: ulpd completes the transition by itself.
wait_transition_done "$pid" klp_nocfi
expect_reply n "call main" "main=main:nocfi-patched"
ulpctl_ok revert klp_nocfi -p "$pid"
expect_reply n "call main" "main=main:orig"
stop_target n

test_done
