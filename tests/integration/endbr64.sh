#!/usr/bin/env bash
# endbr64: a program built with -fcf-protection=full (every function starts
# with endbr64) is patched and reverted correctly; the entry jump goes
# after the endbr64, which stays in place.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_compute.so
ENDBR=f30f1efa
need_file "$PATCH"
start_ulpd
start_target t target_endbr --threads 2
pid=$(target_pid t)

expect_reply t "call 5" "compute(5)=6"
snapshot_target t orig compute
read -r _ addr size bytes < <(snapshot_code t orig)
[[ $bytes == "$ENDBR"* ]] || fail "compute does not start with endbr64 ($bytes): not built with -fcf-protection=full?"

for round in 1 2; do
	step "apply (round $round)"
	ulpctl_ok apply "$PATCH" -p "$pid"
	expect_reply t "call 5" "compute(5)=15"
	now=$(read_mem "$pid" "$addr" 4)
	assert_eq "$now" "$ENDBR" "first bytes of patched compute"

	step "revert (round $round)"
	ulpctl_ok revert compute_fix -p "$pid"
	expect_reply t "call 5" "compute(5)=6"
	snapshot_target t "reverted$round" compute
	assert_same_code t orig "reverted$round"
done

send_cmd t values
[[ $REPLY =~ ^values=(6|15|6,15)$ ]] || fail "threads saw unexpected results: $REPLY"
test_done
