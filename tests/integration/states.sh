#!/usr/bin/env bash
# states: system states with versions (seed 002, the kernel's
# klp_get_state / klp_get_prev_state and klp_is_patch_compatible).
#
# patch_state_a.so declares state 1 version 2, patch_state_b.so version 3,
# patch_state_low.so version 1 (tests/patches/patch_state_*.c); their
# callbacks log their own version and the previous one, which
# ulp_get_prev_state() gives only during their own transition, from the
# patches installed before them.  While state_a is installed, state_low is
# refused before anything changes ("not compatible with the already
# installed patches", in the error and in the event log); state_b is
# accepted and sees version 2 as the previous one.
. "$(dirname "$0")/lib.sh"

for p in patch_state_a patch_state_low patch_state_b; do
	need_file "$PATCHES/$p.so"
done
start_ulpd
start_target s klp_target
pid=$(target_pid s)

step "state_a: version 2, nothing before it"
ulpctl_ok apply "$PATCHES/patch_state_a.so" -p "$pid"
check_log s <<'EOF2'
ulp: enabling patch 'state_a'
ulp: 'state_a': initializing patching transition
state_a: pre_patch: state 1 version 2, no previous version
ulp: 'state_a': starting patching transition
ulp: 'state_a': completing patching transition
state_a: post_patch: state 1 version 2, no previous version
ulp: 'state_a': patching complete
EOF2
expect_reply s "call main" "main=main:state-a"

step "state_low: version 1 under version 2, refused"
expect_fail apply "$PATCHES/patch_state_low.so" -p "$pid" \
	"patch 'state_low' is not compatible with the already installed patches"
check_log_append s <<'EOF2'
ulp: patch 'state_low' is not compatible with the already installed patches
EOF2
expect_reply s "call hot" "hot=2"

step "state_b: version 3 over version 2"
ulpctl_ok apply "$PATCHES/patch_state_b.so" -p "$pid"
check_log_append s <<'EOF2'
ulp: enabling patch 'state_b'
ulp: 'state_b': initializing patching transition
state_b: pre_patch: state 1 version 3, previous version 2
ulp: 'state_b': starting patching transition
ulp: 'state_b': completing patching transition
state_b: post_patch: state 1 version 3, previous version 2
ulp: 'state_b': patching complete
EOF2
expect_reply s "call hot" "hot=3001"

step "reverting: each patch sees the versions before it"
ulpctl_ok revert state_b -p "$pid"
ulpctl_ok revert state_a -p "$pid"
check_log_append s <<'EOF2'
ulp: 'state_b': initializing unpatching transition
state_b: pre_unpatch: state 1 version 3, previous version 2
ulp: 'state_b': starting unpatching transition
ulp: 'state_b': completing unpatching transition
state_b: post_unpatch: state 1 version 3, previous version 2
ulp: 'state_b': unpatching complete
ulp: 'state_a': initializing unpatching transition
state_a: pre_unpatch: state 1 version 2, no previous version
ulp: 'state_a': starting unpatching transition
ulp: 'state_a': completing unpatching transition
state_a: post_unpatch: state 1 version 2, no previous version
ulp: 'state_a': unpatching complete
EOF2

step "state_low alone: nothing installed to conflict with"
ulpctl_ok apply "$PATCHES/patch_state_low.so" -p "$pid"
expect_reply s "call hot" "hot=101"
ulpctl_ok revert state_low -p "$pid"
expect_reply s "call main" "main=main:orig"
expect_reply s "call hot" "hot=2"
assert_no_patches "$pid"
stop_target s

test_done
