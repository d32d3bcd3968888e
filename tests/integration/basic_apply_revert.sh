#!/usr/bin/env bash
# basic_apply_revert: apply a patch to a running PIE program, see the new
# function run, see it in `ulpctl status` (text and JSON), revert it and
# get the original code back byte for byte; re-apply after revert; the
# "already applied" and "not applied" answers of the contract.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"
start_ulpd
start_target t target_basic
pid=$(target_pid t)

step "original code"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t orig compute
compute_addr=$(func_addr "$pid" compute)

step "apply"
ulpctl_ok apply "$PATCH" -p "$pid"
assert_contains "$OUT" "applied patch 'compute_fix' to process $pid" "apply output"
expect_reply t "call 5" "compute(5)=15"
expect_reply t "call 7" "compute(7)=21"
snapshot_target t applied compute

step "status (text)"
ulpctl_ok status -p "$pid"
assert_contains "$OUT" "process $pid (" "status"
assert_contains "$OUT" "target_basic)" "status"
assert_contains "$OUT" "patch 'compute_fix': enabled=1 transition=0 replace=0" "status"
assert_contains "$OUT" "object 'main': patched=1" "status"
[[ $OUT =~ compute\ $compute_addr\ -\>\ 0x[0-9a-f]+ ]] ||
	fail "status does not show 'compute $compute_addr -> 0x...': $OUT"
ulpctl_ok status
assert_contains "$OUT" "patch 'compute_fix'" "status without -p"

step "status --json"
ulpctl_ok status --json
proc=".processes[] | select(.pid == $pid)"
fix="$proc | .patches[] | select(.name == \"compute_fix\")"
assert_json "[$proc] | length == 1" "process $pid listed once"
assert_json "$proc | .exe | endswith(\"/target_basic\")" "exe"
assert_json "[$fix] | length == 1" "patch compute_fix listed once"
assert_json "$fix | .enabled == true and .transition == false and .replace == false" "patch flags"
assert_json "$fix | .stack_order == 1" "stack_order"
assert_json "$fix | .objects | length == 1" "one object"
assert_json "$fix | .objects[0] | .name == \"main\" and .patched == true" "object main patched"
assert_json "$fix | .objects[0].functions | length == 1" "one function"
assert_json "$fix | .objects[0].functions[0] | .old_name == \"compute\" and .old_sympos == 0" "function compute"
assert_json "$fix | .objects[0].functions[0] | .old_addr == \"$compute_addr\"" "old_addr is compute's address"
assert_json "$fix | .objects[0].functions[0] | (.new_addr | test(\"^0x[0-9a-f]+$\")) and .new_addr != .old_addr" "new_addr"

step "already applied: exit 0, nothing changes"
ulpctl_ok apply "$PATCH" -p "$pid"
assert_contains "$OUT" "patch 'compute_fix' is already applied to process $pid" "second apply"
expect_reply t "call 5" "compute(5)=15"
snapshot_target t applied2 compute
assert_unchanged t applied applied2
ulpctl_ok status --json
assert_json "[$proc | .patches[]] | length == 1" "still one patch"

step "revert"
ulpctl_ok revert compute_fix -p "$pid"
assert_contains "$OUT" "reverted patch 'compute_fix' in process $pid" "revert output"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted compute
assert_same_code t orig reverted
assert_no_patches "$pid"

step "revert again: not applied"
expect_fail revert compute_fix -p "$pid" "patch 'compute_fix' is not applied to process $pid"
expect_reply t "call 5" "compute(5)=6"

step "re-apply after revert"
ulpctl_ok apply "$PATCH" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted2 compute
assert_same_code t orig reverted2

test_done
