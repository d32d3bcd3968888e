#!/usr/bin/env bash
# stacking: two patches on one function form a stack, as in the kernel:
# the newest runs; reverting it brings back the one below; reverting both
# restores the original bytes.  Reverting the one below first leaves the
# newest running, now first in the stack.
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
json_load
json_one .processes pid "$pid"
proc=$JREF
assert_eq "$(json_len "$proc.patches")" 2 "number of patches"
json_one "$proc.patches" name '"compute_fix"'
v1_order=$(json_get "$JREF.stack_order")
json_one "$proc.patches" name '"compute_fix_v2"'
v2_order=$(json_get "$JREF.stack_order")
[ "$v1_order" -lt "$v2_order" ] || fail "stack_order: compute_fix $v1_order, compute_fix_v2 $v2_order"

step "revert the newest: the one below runs again"
ulpctl_ok revert compute_fix_v2 -p "$pid"
expect_reply t "call 5" "compute(5)=15"

step "revert the last one: original code"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted compute
assert_same_code t orig reverted
assert_no_patches "$pid"

step "apply both again, revert the one below: the newest keeps running"
ulpctl_ok apply "$V1" -p "$pid"
ulpctl_ok apply "$V2" -p "$pid"
expect_reply t "call 5" "compute(5)=20"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=20"
ulpctl_ok status --json
json_load
json_one .processes pid "$pid"
proc=$JREF
assert_eq "$(json_len "$proc.patches")" 1 "number of patches"
assert_json_eq "$proc.patches[0].name" '"compute_fix_v2"'
assert_json_eq "$proc.patches[0].stack_order" 1

step "revert the newest, now alone: original code"
ulpctl_ok revert compute_fix_v2 -p "$pid"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted2 compute
assert_same_code t orig reverted2
assert_no_patches "$pid"

test_done
