#!/usr/bin/env bash
# function_stacks: several patches on one function while 8 threads spend
# ~90% of their time inside it (klp_target "spin 8"), as the kernel's
# func_stack: the newest version runs; reverting any patch, top or not,
# leaves the function to the next version down, without a thread ever
# running a stale version or crashing; ulp_func.old_func is the original
# whatever lies under a patch; an atomic replace (.replace = true) takes
# every earlier patch's functions back to the original (no-op entries),
# leaves only itself in status and unloads the replaced patches.
#
# Patches (tests/patches/patch_klp_hot.c): klp_hot (x + 1000), klp_hot2
# (x + 2000), klp_hot_old (old_func(x) + 5000), klp_hot_replace
# (replace, klp_main_func -> "main:replaced", nothing for klp_hot_func).
. "$(dirname "$0")/lib.sh"

HOT=$PATCHES/patch_klp_hot.so
HOT2=$PATCHES/patch_klp_hot2.so
HOT_OLD=$PATCHES/patch_klp_hot_old.so
HOT_REPLACE=$PATCHES/patch_klp_hot_replace.so
for f in "$HOT" "$HOT2" "$HOT_OLD" "$HOT_REPLACE" "$TARGETS/klp_target"; do
	need_file "$f"
done
WAIT=30
start_ulpd
start_target k klp_target
pid=$(target_pid k)
snapshot_target k orig klp_hot_func klp_main_func
expect_reply k "spin 8" "spin=ok"

# hot_is VALUE: a fresh call and, soon, every spinner's latest call give VALUE.
hot_is()
{
	expect_reply k "call hot" "hot=$1"
	wait_until "every spinner to return $1" "$WAIT" reply_is k "spin last" "spin last=$1"
}

# stack_is NAME...: status lists exactly these patches, with stack_order 1..n.
stack_is()
{
	local proc i=0 name
	if [ $# -eq 0 ]; then
		assert_no_patches "$pid"
		return
	fi
	ulpctl_ok status --json
	json_load
	proc=$(json_find .processes pid "$pid")
	[ -n "$proc" ] || fail "status --json: no process $pid: $OUT"
	assert_eq "$(json_len "$proc.patches")" "$#" "number of patches"
	for name in "$@"; do
		assert_json_eq "$proc.patches[$i].name" "\"$name\""
		assert_json_eq "$proc.patches[$i].stack_order" "$((i + 1))"
		i=$((i + 1))
	done
}

# loaded FILE yes|no: the patch file is (not) mapped in the target (ulpd
# loads it from a memfd named after the file: "/memfd:NAME (deleted)").
loaded()
{
	if grep -qF "/memfd:${1##*/} " "/proc/$pid/maps"; then
		[ "$2" = yes ] || fail "$1 is still mapped in process $pid"
	else
		[ "$2" = no ] || fail "$1 is not mapped in process $pid"
	fi
}

# The event log's lines for a patch without callbacks.
applied()
{
	printf '%s\n' "ulp: enabling patch '$1'" "ulp: '$1': initializing patching transition" \
		"ulp: '$1': starting patching transition" "ulp: '$1': completing patching transition" \
		"ulp: '$1': patching complete"
}

reverted()
{
	printf '%s\n' "ulp: '$1': initializing unpatching transition" \
		"ulp: '$1': starting unpatching transition" \
		"ulp: '$1': completing unpatching transition" "ulp: '$1': unpatching complete"
}

# patch_gone NAME: status no longer lists the patch in process $pid.
patch_gone()
{
	ulpctl_ok status --json
	! jq -e --argjson p "$pid" --arg n "$1" \
		'.processes[] | select(.pid == $p) | .patches[] | select(.name == $n)' \
		<<<"$OUT" >/dev/null
}

hot_is 2

step "three versions stacked on klp_hot_func"
ulpctl_ok apply "$HOT" -p "$pid"
hot_is 1001
ulpctl_ok apply "$HOT2" -p "$pid"
hot_is 2001
ulpctl_ok apply "$HOT_OLD" -p "$pid"
# old_func is the original (1 + 1), not klp_hot2's version under it
hot_is 5002
stack_is klp_hot klp_hot2 klp_hot_old

step "revert the middle one: the top one keeps running, stack_order renumbered"
ulpctl_ok revert klp_hot2 -p "$pid"
hot_is 5002
stack_is klp_hot klp_hot_old
loaded "$HOT2" no

step "revert the top one: the bottom one runs again"
ulpctl_ok revert klp_hot_old -p "$pid"
hot_is 1001
stack_is klp_hot

step "a new top, then the bottom one reverted under it"
ulpctl_ok apply "$HOT2" -p "$pid"
hot_is 2001
ulpctl_ok revert klp_hot -p "$pid"
hot_is 2001
stack_is klp_hot2
ulpctl_ok revert klp_hot2 -p "$pid"
hot_is 2
stack_is
snapshot_target k after_stack klp_hot_func klp_main_func
assert_same_code k orig after_stack

step "atomic replace of three patches: every function back to the original"
ulpctl_ok apply "$HOT" -p "$pid"
ulpctl_ok apply "$HOT2" -p "$pid"
ulpctl_ok apply "$HOT_OLD" -p "$pid"
hot_is 5002
stack_is klp_hot klp_hot2 klp_hot_old
ulpctl_ok apply "$HOT_REPLACE" -p "$pid"
hot_is 2
expect_reply k "call main" "main=main:replaced"
stack_is klp_hot_replace
loaded "$HOT" no
loaded "$HOT2" no
loaded "$HOT_OLD" no
loaded "$HOT_REPLACE" yes
# the replaced patches are gone: nothing to revert
expect_fail revert klp_hot -p "$pid" "patch 'klp_hot' is not applied to process $pid"
# only the replace patch's own lines: the replaced ones leave silently
{
	applied klp_hot
	applied klp_hot2
	applied klp_hot_old
	reverted klp_hot2
	reverted klp_hot_old
	applied klp_hot2
	reverted klp_hot
	reverted klp_hot2
	applied klp_hot
	applied klp_hot2
	applied klp_hot_old
	applied klp_hot_replace
} | check_log k

step "revert the replace patch: everything original"
ulpctl_ok revert klp_hot_replace -p "$pid"
hot_is 2
expect_reply k "call main" "main=main:orig"
stack_is
loaded "$HOT_REPLACE" no
reverted klp_hot_replace | check_log_append k
snapshot_target k after_replace klp_hot_func klp_main_func
assert_same_code k orig after_replace

step "objects coming and going under a stack"
LP=$PATCHES/patch_klp_livepatch.so
DEMO=$PATCHES/patch_klp_callbacks_demo.so
ulpctl_ok apply "$LP" -p "$pid"
ulpctl_ok apply "$DEMO" -p "$pid"
# both patch klp_mod_func of libklp_mod.so, not loaded yet: the newest wins when it comes
expect_reply k "load mod" "load mod=ok"
expect_reply k "call mod" "mod=mod:patched"
ulpctl_ok revert klp_callbacks_demo -p "$pid"
expect_reply k "call mod" "mod=mod:livepatched"
expect_reply k "unload mod" "unload mod=ok"
ulpctl_ok apply "$DEMO" -p "$pid"
expect_reply k "load mod" "load mod=ok"
expect_reply k "call mod" "mod=mod:patched"
# the bottom one leaves while the object is loaded
ulpctl_ok revert klp_livepatch -p "$pid"
expect_reply k "call mod" "mod=mod:patched"
expect_reply k "call main" "main=main:patched"
stack_is klp_callbacks_demo

step "atomic replace over an object loaded and one that comes later"
# klp_hot_replace patches neither klp_mod_func nor busy_work_func: both go back
ulpctl_ok apply "$HOT_REPLACE" -p "$pid"
expect_reply k "call mod" "mod=mod:orig"
expect_reply k "call main" "main=main:replaced"
stack_is klp_hot_replace
loaded "$DEMO" no
expect_reply k "unload mod" "unload mod=ok"
ulpctl_ok revert klp_hot_replace -p "$pid"
ulpctl_ok apply "$LP" -p "$pid"
ulpctl_ok apply "$HOT_REPLACE" -p "$pid"
loaded "$LP" no
# the no-op for klp_mod_func went with the replaced patch: nothing patches it
expect_reply k "load mod" "load mod=ok"
expect_reply k "call mod" "mod=mod:orig"
ulpctl_ok revert klp_hot_replace -p "$pid"
expect_reply k "call main" "main=main:orig"
hot_is 2
assert_no_patches "$pid"

step "a transition over a stack that stalls, then is reversed"
expect_reply k "unload mod" "unload mod=ok"
expect_reply k "load busy" "load busy=ok"
# blocked in busy_work_func, which klp_callbacks_demo replaces
expect_reply k "busy start 1" "busy start=ok"
ulpctl_ok apply "$LP" -p "$pid"
expect_reply k "call main" "main=main:livepatched"
ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
assert_transition "$pid" klp_callbacks_demo true
# this thread switched (its stack is clear); the busy one runs the version below
expect_reply k "call main" "main=main:patched"
ulpctl_ok revert klp_callbacks_demo -p "$pid"
expect_reply k "call main" "main=main:livepatched"
stack_is klp_livepatch
expect_reply k "busy release" "busy release=ok"
ulpctl_ok revert klp_livepatch -p "$pid"
expect_reply k "call main" "main=main:orig"
assert_no_patches "$pid"
snapshot_target k end klp_hot_func klp_main_func
assert_same_code k orig end

step "a replace naming a replaced function by another sympos: one version, no no-op"
REPL_POS1=$PATCHES/patch_klp_hot_replace_pos1.so
need_file "$REPL_POS1"
ulpctl_ok apply "$LP" -p "$pid"
expect_reply k "call main" "main=main:livepatched"
ulpctl_ok apply "$REPL_POS1" -p "$pid"
expect_reply k "call main" "main=main:replaced"
loaded "$LP" no
stack_is klp_hot_replace_pos1
ulpctl_ok revert klp_hot_replace_pos1 -p "$pid"
expect_reply k "call main" "main=main:orig"
# one function twice in one patch: two versions would fight over its entry
need_file "$PATCHES/patch_klp_hot_twice.so"
expect_fail apply "$PATCHES/patch_klp_hot_twice.so" -p "$pid" \
	"patch 'klp_hot_twice' replaces function 'klp_main_func' in object 'main' twice"
expect_reply k "call main" "main=main:orig"
stop_target k

step "reversing a replace waits for a thread in the original reached through a no-op"
# klp_callbacks_demo is forced past the busy thread blocked in the original
# busy_work_func; klp_hot_replace then stalls on that thread (its no-op for
# busy_work_func), and a thread created meanwhile starts in the replace's
# state, enters klp_outer_func through the no-op (the original) and blocks
# there: reversing must wait for it, or it would come back to klp_nocfi's
# klp_main_func from the original klp_outer_func, a mix of versions.
NOCFI=$PATCHES/patch_klp_nocfi.so
need_file "$NOCFI"
start_target r klp_target
pid=$(target_pid r)
expect_reply r "load busy" "load busy=ok"
expect_reply r "busy start 1" "busy start=ok"
ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
assert_transition "$pid" klp_callbacks_demo true
ulpctl_ok force klp_callbacks_demo -p "$pid"
ulpctl_ok apply "$NOCFI" -p "$pid"
expect_reply r "call main" "main=main:nocfi-patched"
ulpctl_ok apply "$HOT_REPLACE" -p "$pid" --no-wait
assert_transition "$pid" klp_hot_replace true
expect_reply r "call main" "main=main:replaced"
expect_reply r "nocfi start" "nocfi start=ok"
send_cmd r "nocfi tid"
nocfi_tid=${REPLY#nocfi tid=}
wait_until "the nocfi thread to block in read()" "$WAIT" task_in_read "$pid" "$nocfi_tid"
ulpctl_ok revert klp_hot_replace -p "$pid" --no-wait
assert_transition "$pid" klp_hot_replace true
expect_reply r "nocfi release" "nocfi=main:replaced"
wait_until "the reversed replace to leave" "$WAIT" patch_gone klp_hot_replace
stack_is klp_callbacks_demo klp_nocfi
expect_reply r "call main" "main=main:nocfi-patched"
expect_reply r "busy release" "busy release=ok"

test_done
