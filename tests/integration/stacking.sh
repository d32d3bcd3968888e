#!/usr/bin/env bash
# stacking: two patches on one function form a stack, as in the kernel:
# the newest runs; reverting it brings back the one below; reverting both
# restores the original bytes.
. "$(dirname "$0")/lib.sh"

V1=$PATCHES/patch_compute.so
V2=$PATCHES/patch_compute_v2.so
need_file "$V1"
need_file "$V2"
start_ulpd
start_target t target_basic
pid=$(target_pid t)

expect_reply t "call 5" "compute(5)=6"
snapshot_target t orig compute

step "apply compute_fix, then compute_fix_v2 on top"
ulpctl_ok apply "$V1" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
ulpctl_ok apply "$V2" -p "$pid"
expect_reply t "call 5" "compute(5)=20"
ulpctl_ok status --json
proc=".processes[] | select(.pid == $pid)"
assert_json "[$proc | .patches[].name] | sort == [\"compute_fix\", \"compute_fix_v2\"]" "both patches listed"
assert_json "$proc | (.patches[] | select(.name == \"compute_fix\") | .stack_order) < (.patches[] | select(.name == \"compute_fix_v2\") | .stack_order)" "v2 above v1"

step "revert the newest: the one below runs again"
ulpctl_ok revert compute_fix_v2 -p "$pid"
expect_reply t "call 5" "compute(5)=15"

step "revert the last one: original code"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted compute
assert_same_code t orig reverted
assert_no_patches "$pid"

test_done
