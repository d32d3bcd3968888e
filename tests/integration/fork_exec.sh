#!/usr/bin/env bash
# fork_exec: a child forked by a patched process keeps the patched code,
# appears in `ulpctl status` (ulpd takes it over from the state its
# parent's memory held) and can be reverted on its own; a process that
# executes another program is dropped from status.
. "$(dirname "$0")/lib.sh"

LP=$PATCHES/patch_klp_livepatch.so
need_file "$LP"
need_file "$TARGETS/klp_target"
start_ulpd
start_target p klp_target
pid=$(target_pid p)

# listed PID: status lists the process with patch klp_livepatch
listed()
{
	ulpctl_ok status --json
	jq -e --argjson p "$1" '.processes[] | select(.pid == $p) | .patches[] |
		select(.name == "klp_livepatch")' <<<"$OUT" >/dev/null
}

step "apply, then fork: the child runs the patched code"
ulpctl_ok apply "$LP" -p "$pid"
expect_reply p "call main" "main=main:livepatched"
send_cmd p "child start"
child=${REPLY#child start=}
[[ $child =~ ^[0-9]+$ ]] || fail "child start: $REPLY"
track_pid "$child"
expect_reply p "child main" "child main=main:livepatched"
# single-threaded until ulpd takes it over (a child may unshare() a user namespace)
assert_eq "$(awk '/^Threads:/ { print $2 }' "/proc/$child/status")" 1 "threads of the child"

step "the child appears in status with the parent's patch"
listed "$child" || fail "child $child not in status: $OUT"
listed "$pid" || fail "parent $pid not in status: $OUT"

assert_eq "$(awk '/^Threads:/ { print $2 }' "/proc/$child/status")" 2 \
	"threads of the adopted child (its runtime's worker)"

step "the child is reverted on its own"
ulpctl_ok revert klp_livepatch -p "$child"
expect_reply p "child main" "child main=main:orig"
expect_reply p "call main" "main=main:livepatched"
! listed "$child" || fail "child $child still has the patch: $OUT"
ulpctl_ok apply "$LP" -p "$child"
expect_reply p "child main" "child main=main:livepatched"
listed "$child" || fail "child $child not in status after a new apply: $OUT"

step "the child executes another program: dropped"
expect_reply p "child exec" "child exec=ok"
wait_until "the child to execute sleep" "$WAIT_TIMEOUT" \
	grep -q '^sleep$' "/proc/$child/comm"
wait_until "status to drop the child" "$WAIT_TIMEOUT" eval '! listed "$child"'
listed "$pid" || fail "parent $pid not in status: $OUT"

step "the parent is still whole"
ulpctl_ok revert klp_livepatch -p "$pid"
expect_reply p "call main" "main=main:orig"
kill_pid "$child" KILL
untrack_pid "$child"
test_done
