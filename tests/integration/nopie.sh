#!/usr/bin/env bash
# nopie: the same apply / revert on a non-PIE executable (fixed addresses).
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_nopie.so
need_file "$PATCH"
start_ulpd
start_target t target_nopie
pid=$(target_pid t)

expect_reply t "call 5" "compute(5)=6"
snapshot_target t orig compute
# Not relocated: the address is the one in the file.
compute_addr=0x$(nm "$TARGETS/target_nopie" | awk '$3 == "compute" { print $1 }' | sed 's/^0*//')
assert_eq "$(func_addr "$pid" compute)" "$compute_addr" "compute's address"

step "apply"
ulpctl_ok apply "$PATCH" -p "$pid"
assert_contains "$OUT" "applied patch 'compute_nopie_fix' to process $pid" "apply output"
expect_reply t "call 5" "compute(5)=15"
ulpctl_ok status --json
json_load
json_one .processes pid "$pid"
json_one "$JREF.patches" name '"compute_nopie_fix"'
json_one "$JREF.objects" name '"main"'
json_one "$JREF.functions" old_name '"compute"'
assert_json_eq "$JREF.old_addr" "\"$compute_addr\""

step "revert"
ulpctl_ok revert compute_nopie_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted compute
assert_same_code t orig reverted

step "re-apply, revert"
ulpctl_ok apply "$PATCH" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
ulpctl_ok revert compute_nopie_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"

test_done
