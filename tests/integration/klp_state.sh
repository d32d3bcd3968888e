#!/usr/bin/env bash
# klp_state: the kernel's livepatch selftest test-state.sh for ulp, its four
# cases: system state modification; taking over system state modification;
# compatible cumulative livepatches; incompatible cumulative livepatches
# (system states and their versions: /work/shared/seeds/002; the patches'
# callbacks use ulp_get_state / ulp_get_prev_state).
#
# Kernel -> ulp:
#   test_klp_state.ko    patch_klp_state.so   ("test_klp_state": state 1
#                        version 1, .replace)
#   test_klp_state2.ko   patch_klp_state2.so  ("test_klp_state2": state 1
#                        version 2, .replace, takes the change over from an
#                        installed patch)
#   test_klp_state3.ko   patch_klp_state3.so  ("test_klp_state3": the same
#                        code as test_klp_state2, as in the kernel)
#   vmlinux              klp_target (object "main"; the patches' object has
#                        no functions, like the kernel modules': ulp accepts
#                        a patch made of callbacks and states only)
#   console_loglevel     klp_counter, a file-static variable of klp_target,
#                        reached through a struct ulp_symbol_ref.  The
#                        state a cumulative patch takes over must outlive
#                        the patch that changed it (a variable of a patch
#                        would be unloaded with it), and klp_target shows
#                        it: "count" answers klp_counter + 1.  So the fix
#                        (set to 15, CONSOLE_LOGLEVEL_MOTORMOUTH) and its
#                        restoration to the value saved in the state's data
#                        are checked in the target, not only in the log.
#   modprobe / echo 0 > enabled    ulpctl apply / ulpctl revert
#   rmmod of a disabled patch      nothing: ulpctl revert unloads the patch
#   rmmod of a replaced patch      nothing either: an atomic replace unloads
#                                  the replaced patches itself, without a
#                                  log line or a callback of theirs; asking
#                                  to revert one is refused ("not applied"),
#                                  and it is gone from `ulpctl status` and
#                                  from the target's memory
#   "livepatch: Livepatch patch (X) is not compatible with the already
#    installed livepatches." + modprobe's error
#                                  "ulp: patch 'X' is not compatible with the
#                                  already installed patches", in the event
#                                  log and in ulpctl's error (exit 1)
#   dmesg -C per case              a fresh target per case
#
# Each case compares the target's WHOLE event log (`ulpctl log`) with the
# kernel's expected dmesg translated as in klp_callbacks.sh ("livepatch: "
# -> "ulp: ", vmlinux -> main).
. "$(dirname "$0")/lib.sh"

for p in patch_klp_state patch_klp_state2 patch_klp_state3; do
	need_file "$PATCHES/$p.so"
done
need_file "$TARGETS/klp_target"

# installed_patches PID: the names of the patches ulpd lists for process PID
# (`ulpctl status --json`), in its order, one a line.
installed_patches()
{
	local proc n i name
	run_ulpctl status --json
	[ "$RC" -eq 0 ] || fail "ulpctl status --json exited $RC: $ERR"
	json_load
	proc=$(json_find .processes pid "$1")
	[ -n "$proc" ] || return 0
	n=$(json_len "$proc.patches")
	for ((i = 0; i < n; i++)); do
		name=$(json_get "$proc.patches[$i].name")
		name=${name#\"}
		printf '%s\n' "${name%\"}"
	done
}

# mapped_state_patches PID: which patch_klp_state*.so files the target has
# mapped (their patch names, sorted), one a line.
mapped_state_patches()
{
	awk '{ print $6 }' "/proc/$1/maps" | grep -o 'patch_klp_state[0-9]*\.so$' |
		sed 's/^patch_\(.*\)\.so$/test_\1/' | sort -u || true
}

mapped_state_patches_are()
{
	[ "$(mapped_state_patches "$1")" = "$2" ]
}

# assert_patches PID [NAME...]: process PID has exactly the patches NAME...
# in `ulpctl status`, and of this test's patch files only theirs are mapped
# in it (a replaced or reverted patch is unloaded; waited for, bounded, as
# the kernel too frees replaced patches after the transition).
assert_patches()
{
	local pid=$1 want got
	shift
	want=$(printf '%s\n' "$@")
	got=$(installed_patches "$pid")
	[ "$got" = "$want" ] ||
		fail "process $pid: ulpctl status lists patches '${got//$'\n'/ }', expected '${want//$'\n'/ }'"
	want=$(printf '%s\n' "$@" | sort)
	wait_until "process $pid to have mapped exactly the patches '${want//$'\n'/ }'" \
		"$WAIT_TIMEOUT" mapped_state_patches_are "$pid" "$want"
	log "process $pid: patches '${got//$'\n'/ }', nothing else of this test mapped"
}

# count NAME N: klp_target NAME's "count" answers N (klp_counter + 1, the
# console_loglevel stand-in: 16 and on while the fix is in place).
count()
{
	expect_reply "$1" count "count=$2"
}

apply_lp()
{
	ulpctl_ok apply "$PATCHES/patch_$2.so" -p "$1"
	assert_contains "$OUT" "applied patch 'test_$2' to process $1" "apply output"
}

revert_lp()
{
	ulpctl_ok revert "test_$2" -p "$1"
	assert_contains "$OUT" "reverted patch 'test_$2' in process $1" "revert output"
}

# rmmod_replaced T PID NAME: the kernel's rmmod of a patch that an atomic
# replace made obsolete: in ulp it is gone already; asking to revert it is
# refused and adds nothing to the event log of target T (process PID).
rmmod_replaced()
{
	expect_fail revert "test_$3" -p "$2" "patch 'test_$3' is not applied to process $2"
	check_log_file "$1"
}

start_ulpd

# -------------------------------------------------------------------------
step "system state modification"
start_target t1 klp_target
pid=$(target_pid t1)
count t1 1

apply_lp "$pid" klp_state
check_log t1 <<'EOF'
ulp: enabling patch 'test_klp_state'
ulp: 'test_klp_state': initializing patching transition
test_klp_state: pre_patch_callback: main
test_klp_state: allocate_loglevel_state: allocating space to store console_loglevel
ulp: 'test_klp_state': starting patching transition
ulp: 'test_klp_state': completing patching transition
test_klp_state: post_patch_callback: main
test_klp_state: fix_console_loglevel: fixing console_loglevel
ulp: 'test_klp_state': patching complete
EOF
assert_patches "$pid" test_klp_state
count t1 16

revert_lp "$pid" klp_state
check_log_append t1 <<'EOF'
ulp: 'test_klp_state': initializing unpatching transition
test_klp_state: pre_unpatch_callback: main
test_klp_state: restore_console_loglevel: restoring console_loglevel
ulp: 'test_klp_state': starting unpatching transition
ulp: 'test_klp_state': completing unpatching transition
test_klp_state: post_unpatch_callback: main
test_klp_state: free_loglevel_state: freeing space for the stored console_loglevel
ulp: 'test_klp_state': unpatching complete
EOF
assert_patches "$pid"
count t1 2
stop_target t1

# -------------------------------------------------------------------------
step "taking over system state modification"
start_target t2 klp_target
pid=$(target_pid t2)
count t2 1

apply_lp "$pid" klp_state
check_log t2 <<'EOF'
ulp: enabling patch 'test_klp_state'
ulp: 'test_klp_state': initializing patching transition
test_klp_state: pre_patch_callback: main
test_klp_state: allocate_loglevel_state: allocating space to store console_loglevel
ulp: 'test_klp_state': starting patching transition
ulp: 'test_klp_state': completing patching transition
test_klp_state: post_patch_callback: main
test_klp_state: fix_console_loglevel: fixing console_loglevel
ulp: 'test_klp_state': patching complete
EOF
count t2 16

# test_klp_state2 replaces test_klp_state and keeps its change (and its
# saved value): no callback of test_klp_state runs.
apply_lp "$pid" klp_state2
check_log_append t2 <<'EOF'
ulp: enabling patch 'test_klp_state2'
ulp: 'test_klp_state2': initializing patching transition
test_klp_state2: pre_patch_callback: main
test_klp_state2: allocate_loglevel_state: space to store console_loglevel already allocated
ulp: 'test_klp_state2': starting patching transition
ulp: 'test_klp_state2': completing patching transition
test_klp_state2: post_patch_callback: main
test_klp_state2: fix_console_loglevel: taking over the console_loglevel change
ulp: 'test_klp_state2': patching complete
EOF
assert_patches "$pid" test_klp_state2
count t2 17

rmmod_replaced t2 "$pid" klp_state

# Nothing installed before it any more: test_klp_state2 restores the value
# test_klp_state saved and frees the space test_klp_state allocated.
revert_lp "$pid" klp_state2
check_log_append t2 <<'EOF'
ulp: 'test_klp_state2': initializing unpatching transition
test_klp_state2: pre_unpatch_callback: main
test_klp_state2: restore_console_loglevel: restoring console_loglevel
ulp: 'test_klp_state2': starting unpatching transition
ulp: 'test_klp_state2': completing unpatching transition
test_klp_state2: post_unpatch_callback: main
test_klp_state2: free_loglevel_state: freeing space for the stored console_loglevel
ulp: 'test_klp_state2': unpatching complete
EOF
assert_patches "$pid"
count t2 2
stop_target t2

# -------------------------------------------------------------------------
step "compatible cumulative livepatches"
start_target t3 klp_target
pid=$(target_pid t3)
count t3 1

apply_lp "$pid" klp_state2
check_log t3 <<'EOF'
ulp: enabling patch 'test_klp_state2'
ulp: 'test_klp_state2': initializing patching transition
test_klp_state2: pre_patch_callback: main
test_klp_state2: allocate_loglevel_state: allocating space to store console_loglevel
ulp: 'test_klp_state2': starting patching transition
ulp: 'test_klp_state2': completing patching transition
test_klp_state2: post_patch_callback: main
test_klp_state2: fix_console_loglevel: fixing console_loglevel
ulp: 'test_klp_state2': patching complete
EOF
count t3 16

# The same version: test_klp_state3 may replace test_klp_state2 ...
apply_lp "$pid" klp_state3
check_log_append t3 <<'EOF'
ulp: enabling patch 'test_klp_state3'
ulp: 'test_klp_state3': initializing patching transition
test_klp_state3: pre_patch_callback: main
test_klp_state3: allocate_loglevel_state: space to store console_loglevel already allocated
ulp: 'test_klp_state3': starting patching transition
ulp: 'test_klp_state3': completing patching transition
test_klp_state3: post_patch_callback: main
test_klp_state3: fix_console_loglevel: taking over the console_loglevel change
ulp: 'test_klp_state3': patching complete
EOF
assert_patches "$pid" test_klp_state3
count t3 17

rmmod_replaced t3 "$pid" klp_state2

# ... and the other way round: the replaced test_klp_state2 is applied again.
apply_lp "$pid" klp_state2
check_log_append t3 <<'EOF'
ulp: enabling patch 'test_klp_state2'
ulp: 'test_klp_state2': initializing patching transition
test_klp_state2: pre_patch_callback: main
test_klp_state2: allocate_loglevel_state: space to store console_loglevel already allocated
ulp: 'test_klp_state2': starting patching transition
ulp: 'test_klp_state2': completing patching transition
test_klp_state2: post_patch_callback: main
test_klp_state2: fix_console_loglevel: taking over the console_loglevel change
ulp: 'test_klp_state2': patching complete
EOF
assert_patches "$pid" test_klp_state2
count t3 18

revert_lp "$pid" klp_state2
check_log_append t3 <<'EOF'
ulp: 'test_klp_state2': initializing unpatching transition
test_klp_state2: pre_unpatch_callback: main
test_klp_state2: restore_console_loglevel: restoring console_loglevel
ulp: 'test_klp_state2': starting unpatching transition
ulp: 'test_klp_state2': completing unpatching transition
test_klp_state2: post_unpatch_callback: main
test_klp_state2: free_loglevel_state: freeing space for the stored console_loglevel
ulp: 'test_klp_state2': unpatching complete
EOF
assert_patches "$pid"
count t3 2

rmmod_replaced t3 "$pid" klp_state3
stop_target t3

# -------------------------------------------------------------------------
step "incompatible cumulative livepatches"
start_target t4 klp_target
pid=$(target_pid t4)
count t4 1

apply_lp "$pid" klp_state2
check_log t4 <<'EOF'
ulp: enabling patch 'test_klp_state2'
ulp: 'test_klp_state2': initializing patching transition
test_klp_state2: pre_patch_callback: main
test_klp_state2: allocate_loglevel_state: allocating space to store console_loglevel
ulp: 'test_klp_state2': starting patching transition
ulp: 'test_klp_state2': completing patching transition
test_klp_state2: post_patch_callback: main
test_klp_state2: fix_console_loglevel: fixing console_loglevel
ulp: 'test_klp_state2': patching complete
EOF
count t4 16

# Version 1 cannot take over a change made with version 2: refused before
# anything changes, no callback of either patch runs.
expect_fail apply "$PATCHES/patch_klp_state.so" -p "$pid" \
	"patch 'test_klp_state' is not compatible with the already installed patches"
check_log_append t4 <<'EOF'
ulp: patch 'test_klp_state' is not compatible with the already installed patches
EOF
assert_patches "$pid" test_klp_state2
count t4 17

revert_lp "$pid" klp_state2
check_log_append t4 <<'EOF'
ulp: 'test_klp_state2': initializing unpatching transition
test_klp_state2: pre_unpatch_callback: main
test_klp_state2: restore_console_loglevel: restoring console_loglevel
ulp: 'test_klp_state2': starting unpatching transition
ulp: 'test_klp_state2': completing unpatching transition
test_klp_state2: post_unpatch_callback: main
test_klp_state2: free_loglevel_state: freeing space for the stored console_loglevel
ulp: 'test_klp_state2': unpatching complete
EOF
assert_patches "$pid"
count t4 2
stop_target t4

test_done
