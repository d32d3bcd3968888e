#!/usr/bin/env bash
# log_follow: `ulpctl log -p PID -f` prints the event log as it grows,
# lines written by the patch's callbacks included, and ends by itself
# (exit 0) when the process exits.
#
# What breaks it: a follow that prints only what was there when it started,
# repeats lines, misses the callbacks' lines, or never ends.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_klp_callbacks_demo.so
need_file "$PATCH"
start_ulpd
start_target t klp_target
pid=$(target_pid t)

# The process is known to ulpd but its log is empty: nothing printed yet.
bg_ulpctl_start follow log -p "$pid" -f
sleep 0.5
[ ! -s "$BG_OUT.out" ] || fail "log -f printed lines before anything happened: $(cat "$BG_OUT.out")"

ulpctl_ok apply "$PATCH" -p "$pid"
followed_has()
{
	grep -qx "$1" "$BG_OUT.out"
}
wait_until "log -f to show the completed apply" "$WAIT_TIMEOUT" \
	followed_has "ulp: 'klp_callbacks_demo': patching complete"
ulpctl_ok revert klp_callbacks_demo -p "$pid"
wait_until "log -f to show the completed revert" "$WAIT_TIMEOUT" \
	followed_has "ulp: 'klp_callbacks_demo': unpatching complete"

# Exactly the log, each line once, callbacks included.
run_ulpctl log -p "$pid"
[ "$RC" -eq 0 ] || fail "ulpctl log exited $RC: $ERR"
assert_contains "$OUT" "klp_callbacks_demo: post_patch_callback: main" "event log"
assert_eq "$(cat "$BG_OUT.out")" "$OUT" "log -f output vs the whole log"

# The process goes: the follow ends on its own, successfully.
stop_target t
bg_ulpctl_finish
[ "$BG_RC" -eq 0 ] || fail "log -f exited $BG_RC after the process exited: $(cat "$BG_OUT.err")"

test_done
