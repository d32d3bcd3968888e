#!/usr/bin/env bash
# check: `ulpctl check` validates a patch file alone (exit 0), or against a
# process without changing anything in it (maps and code identical, no
# patch in status), and refuses what apply would refuse.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"
start_ulpd
start_target t target_basic
pid=$(target_pid t)

step "check the file alone"
ulpctl_ok check "$PATCH"
assert_contains "$OUT" "patch 'compute_fix' ($PATCH) is valid" "check output"
expect_fail check "$PATCHES/bad.so" "not an ELF file"
expect_fail check "$PATCHES/libnotapatch.so" "not a ulp patch"
expect_fail check "$PATCHES/patch_aarch64.so" "wrong architecture"

step "check against a process: nothing changes"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t before compute helper
ulpctl_ok check "$PATCH" -p "$pid"
assert_contains "$OUT" "patch 'compute_fix' can be applied to process $pid" "check -p output"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t after compute helper
assert_unchanged t before after
assert_no_patches "$pid"

step "check refuses what apply refuses"
expect_fail check "$PATCHES/patch_unknown.so" -p "$pid" "symbol 'no_such_function' not found in object 'main'"
expect_fail check "$PATCHES/patch_helper_ambiguous.so" -p "$pid" "is ambiguous"
expect_fail check "$PATCHES/patch_tiny.so" -p "$pid" "too short"
expect_fail check "$PATCHES/patch_buildid_wrong.so" -p "$pid" "build-id mismatch"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t after_bad compute helper
assert_unchanged t before after_bad
assert_no_patches "$pid"

test_done
