#!/usr/bin/env bash
# basic_apply_revert: apply a patch to a running PIE program, see the new
# function run, see it in `ulpctl status` (text and JSON), revert it and
# get the original code back byte for byte; re-apply after revert; the
# "already applied" and "not applied" answers of the contract.
# Run a second time with ULP_POKE_STOP_ALL=1 in ulpd's environment
# (integration.basic_apply_revert_stop_all): entry jumps are then written
# with every thread stopped, the path taken where the kernel has no
# membarrier SYNC_CORE; the event log must say so, and everything else
# must hold the same.
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
json_load
json_one .processes pid "$pid"
proc=$JREF
[[ $(json_get "$proc.exe") == *'/target_basic"' ]] || fail "exe: $(json_get "$proc.exe")"
assert_eq "$(json_len "$proc.patches")" 1 "number of patches"
json_one "$proc.patches" name '"compute_fix"'
fix=$JREF
assert_json_eq "$fix.enabled" true
assert_json_eq "$fix.transition" false
assert_json_eq "$fix.replace" false
assert_json_eq "$fix.stack_order" 1
assert_eq "$(json_len "$fix.objects")" 1 "number of objects"
assert_json_eq "$fix.objects[0].name" '"main"'
assert_json_eq "$fix.objects[0].patched" true
fn="$fix.objects[0].functions"
assert_eq "$(json_len "$fn")" 1 "number of functions"
assert_json_eq "${fn}[0].old_name" '"compute"'
assert_json_eq "${fn}[0].old_sympos" 0
assert_json_eq "${fn}[0].old_addr" "\"$compute_addr\""
new_addr=$(json_get "${fn}[0].new_addr")
[[ $new_addr =~ ^\"0x[0-9a-f]+\"$ ]] || fail "new_addr: '$new_addr'"
[ "$new_addr" != "\"$compute_addr\"" ] || fail "new_addr is old_addr"

step "the entry jumps straight to the new function"
# ulp maps the patch within +-2 GiB of the executable, so once every thread
# has switched a patched call costs one direct jmp rel32 (no slot, no
# indirect jump).  A patch dlopen()ed next to the libraries, terabytes away,
# could only be reached through the slot.
entry=$(read_mem "$pid" "$compute_addr" 5)
[ "${entry:0:2}" = e9 ] || fail "entry of compute is not a jmp rel32: $entry"
rel=$((0x${entry:8:2}${entry:6:2}${entry:4:2}${entry:2:2}))
((rel >= 0x80000000)) && rel=$((rel - 0x100000000))
printf -v jumps_to '0x%x' $((compute_addr + 5 + rel))
assert_eq "\"$jumps_to\"" "$new_addr" "target of the entry jump"

step "already applied: exit 0, nothing changes"
ulpctl_ok apply "$PATCH" -p "$pid"
assert_contains "$OUT" "patch 'compute_fix' is already applied to process $pid" "second apply"
expect_reply t "call 5" "compute(5)=15"
snapshot_target t applied2 compute
assert_unchanged t applied applied2
ulpctl_ok status --json
json_load
json_one .processes pid "$pid"
assert_eq "$(json_len "$JREF.patches")" 1 "number of patches"

step "another file under the same name: refused, nothing changes"
need_file "$PATCHES/patch_compute_other.so"
expect_fail apply "$PATCHES/patch_compute_other.so" -p "$pid" \
	"process $pid already has a different patch named 'compute_fix'"
expect_reply t "call 5" "compute(5)=15"
snapshot_target t applied3 compute
assert_unchanged t applied applied3

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

step "how entry jumps were written"
ulpctl_ok log -p "$pid"
if [ "${ULP_POKE_STOP_ALL:-0}" != 0 ]; then
	assert_contains "$OUT" "code changes stop every thread at once" "event log"
elif [[ $OUT == *"code changes stop every thread"* ]]; then
	fail "entry jumps were written with every thread stopped: $OUT"
fi

test_done
