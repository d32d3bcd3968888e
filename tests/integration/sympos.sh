#!/usr/bin/env bash
# sympos: two static functions named helper; old_sympos = 2 patches only
# the second, no old_sympos is refused as ambiguous (naming both
# positions) and leaves the process untouched.
. "$(dirname "$0")/lib.sh"

POS2=$PATCHES/patch_helper_pos2.so
AMBIG=$PATCHES/patch_helper_ambiguous.so
need_file "$POS2"
need_file "$AMBIG"

# Precondition: in .symtab, helper1.c's helper comes first (sympos 1).
order=$(readelf -sW "$TARGETS/target_basic" |
	awk '$4 == "FILE" && $8 ~ /^helper[12]\.c$/ { f = $8 } $4 == "FUNC" && $8 == "helper" { print f }' |
	tr '\n' ' ')
assert_eq "$order" "helper1.c helper2.c " "order of the helper symbols in .symtab"

start_ulpd
start_target t target_basic
pid=$(target_pid t)
expect_reply t "helper1 3" "helper1(3)=30"
expect_reply t "helper2 3" "helper2(3)=300"
snapshot_target t orig helper
# The second helper in symbol-table order, where it is in the process.
h2_value=$(readelf -sW "$TARGETS/target_basic" | awk '$4 == "FUNC" && $8 == "helper" { if (++n == 2) print $2 }')
h2_addr=$(printf 0x%x $(($(load_base "$pid" "$(mapped_file "$pid")") + 0x$h2_value)))

step "no sympos: ambiguous, nothing changes"
expect_fail apply "$AMBIG" -p "$pid" "is ambiguous"
assert_contains "$ERR" "(sympos 1)" "ambiguity error"
assert_contains "$ERR" "(sympos 2)" "ambiguity error"
expect_reply t "helper1 3" "helper1(3)=30"
expect_reply t "helper2 3" "helper2(3)=300"
snapshot_target t after_ambiguous helper
assert_unchanged t orig after_ambiguous
assert_no_patches "$pid"

step "sympos 2: only the second helper changes"
ulpctl_ok apply "$POS2" -p "$pid"
expect_reply t "helper1 3" "helper1(3)=30"
expect_reply t "helper2 3" "helper2(3)=21"
ulpctl_ok status --json
json_load
json_one .processes pid "$pid"
json_one "$JREF.patches" name '"helper_fix"'
json_one "$JREF.objects" name '"main"'
json_one "$JREF.functions" old_name '"helper"'
assert_json_eq "$JREF.old_sympos" 2
assert_json_eq "$JREF.old_addr" "\"$h2_addr\""

step "revert"
ulpctl_ok revert helper_fix -p "$pid"
expect_reply t "helper1 3" "helper1(3)=30"
expect_reply t "helper2 3" "helper2(3)=300"
snapshot_target t reverted helper
assert_same_code t orig reverted

test_done
