#!/usr/bin/env bash
# shared_lib: patch lib_compute() in libulpdemo.so.1 (object named by its
# SONAME), with the library's full .symtab and with a stripped copy that
# only has .dynsym.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_lib.so
need_file "$PATCH"
start_ulpd

for prog in target_lib target_lib_stripped; do
	step "$prog"
	start_target t "$prog"
	pid=$(target_pid t)
	expect_reply t "call 5" "lib_compute(5)=7"
	lib=$(awk 'index($6, "libulpdemo.so") { print $6; exit }' "/proc/$pid/maps")
	[ -n "$lib" ] || fail "libulpdemo.so.1 not mapped in $prog"
	if [ "$prog" = target_lib_stripped ]; then
		[ -z "$(nm "$lib" 2>/dev/null)" ] || fail "$lib still has a .symtab"
	fi
	snapshot_target t orig libulpdemo.so:lib_compute
	lib_addr=$(func_addr "$pid" libulpdemo.so:lib_compute)

	ulpctl_ok apply "$PATCH" -p "$pid"
	assert_contains "$OUT" "applied patch 'lib_fix' to process $pid" "apply output"
	expect_reply t "call 5" "lib_compute(5)=20"
	ulpctl_ok status -p "$pid"
	assert_contains "$OUT" "object 'libulpdemo.so.1': patched=1" "status"
	ulpctl_ok status --json
	json_load
	json_one .processes pid "$pid"
	json_one "$JREF.patches" name '"lib_fix"'
	json_one "$JREF.objects" name '"libulpdemo.so.1"'
	assert_json_eq "$JREF.patched" true
	json_one "$JREF.functions" old_name '"lib_compute"'
	assert_json_eq "$JREF.old_addr" "\"$lib_addr\""

	ulpctl_ok revert lib_fix -p "$pid"
	expect_reply t "call 5" "lib_compute(5)=7"
	snapshot_target t reverted libulpdemo.so:lib_compute
	assert_same_code t orig reverted
	stop_target t
done

test_done
