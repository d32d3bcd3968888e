#!/usr/bin/env bash
# klp_sysfs: the kernel's livepatch selftest test-sysfs.sh for ulp.
#
# The kernel shows each patch under /sys/kernel/livepatch/<patch>/ (enabled,
# transition, replace, stack_order; <object>/patched); ulp shows the same in
# `ulpctl status -p PID` (text) and `ulpctl status --json`
# (docs/cli-contract.md, ulpctl(8)).  The sysfs files' permissions have no
# counterpart.  Patches, for tests/targets/klp_target.c:
#   patch_klp_livepatch.so       "klp_livepatch": klp_main_func (main),
#                                klp_mod_func (libklp_mod.so)
#   patch_klp_callbacks_demo.so  "klp_callbacks_demo": the same functions,
#                                and busy_work_func (libklp_busy.so)
#   patch_klp_atomic_replace.so  "klp_atomic_replace": klp_main2_func;
#                                replace=1: patch_klp_atomic_replace_replace.so
#   patch_klp_hot.so             "klp_hot": klp_hot_func
# Cases, each in a fresh target whose event log is compared whole:
#   1. sysfs test: every field of one applied patch, text and JSON, down to
#      the functions' old and new addresses;
#   2. sysfs test object/patched: an object's "patched" is false while
#      libklp_mod.so is not loaded, true once dlopen()ed (patched while
#      loading), false again after its dlclose();
#   3. replace: the patch's replace flag, 0 and 1;
#   4. stack_order: three patches on different functions are 1, 2, 3 in
#      apply order; reverting the middle one renumbers the top one to 2; an
#      atomic replace leaves only itself, as 1.
. "$(dirname "$0")/lib.sh"

LP=$PATCHES/patch_klp_livepatch.so
DEMO=$PATCHES/patch_klp_callbacks_demo.so
AR=$PATCHES/patch_klp_atomic_replace.so
AR_REPLACE=$PATCHES/patch_klp_atomic_replace_replace.so
HOT=$PATCHES/patch_klp_hot.so
for f in "$LP" "$DEMO" "$AR" "$AR_REPLACE" "$HOT" "$TARGETS/klp_target"; do
	need_file "$f"
done
start_ulpd

# apply_ok PID FILE NAME / revert_ok PID NAME
apply_ok()
{
	ulpctl_ok apply "$2" -p "$1"
	assert_contains "$OUT" "applied patch '$3' to process $1" "apply output"
}

revert_ok()
{
	ulpctl_ok revert "$2" -p "$1"
	assert_contains "$OUT" "reverted patch '$2' in process $1" "revert output"
}

# addr PID SPEC: the address of a function (locate_func's SPEC), as ulp
# prints addresses (0x, lowercase hex).
addr()
{
	func_addr "$1" "$2" || fail "cannot locate $2 in process $1"
}

# status_text_is PID <<'EOF' ... EOF: `ulpctl status -p PID` prints exactly
# the lines on stdin (function lines "OLD_NAME OLD_ADDR -> NEW_ADDR
# (NEW_NAME)", as ulpctl(8) documents them).
status_text_is()
{
	local exp=$TMP/status.expected act=$TMP/status.actual
	cat >"$exp"
	ulpctl_ok status -p "$1"
	printf '%s\n' "$OUT" >"$act"
	diff -q "$exp" "$act" >/dev/null && return 0
	diff -u --label expected --label actual "$exp" "$act" >&2 || true
	fail "ulpctl status -p $1 differs from the expected text (diff above)"
}

# json_proc PID: load `ulpctl status --json`; JREF = process PID's element.
json_proc()
{
	ulpctl_ok status --json
	json_load
	json_one .processes pid "$1"
}

# json_patch PID NAME: as json_proc; JREF = that patch's element.
json_patch()
{
	json_proc "$1"
	json_one "$JREF.patches" name "\"$2\""
}

# patch_fields_are PATCH_REF ENABLED TRANSITION REPLACE STACK_ORDER (JSON text)
patch_fields_are()
{
	assert_json_eq "$1.enabled" "$2"
	assert_json_eq "$1.transition" "$3"
	assert_json_eq "$1.replace" "$4"
	assert_json_eq "$1.stack_order" "$5"
}

# object_is PID PATCH OBJECT true|false: the "patched" of that object.
object_is()
{
	json_patch "$1" "$2"
	json_one "$JREF.objects" name "\"$3\""
	assert_json_eq "$JREF.patched" "$4"
	log "patch '$2' of process $1: object '$3' patched=$4"
}

# patch_lines_are PID <<'EOF' ... EOF: the "  patch '...': ..." lines of
# `ulpctl status -p PID`, in order.
patch_lines_are()
{
	local exp=$TMP/patch_lines.expected act=$TMP/patch_lines.actual
	cat >"$exp"
	ulpctl_ok status -p "$1"
	grep '^  patch ' <<<"$OUT" >"$act" || true
	diff -u --label expected --label actual "$exp" "$act" >&2 ||
		fail "patch lines of ulpctl status -p $1 differ (diff above)"
}

# stack_is PID NAME...: `ulpctl status --json` lists exactly these patches,
# NAME1 with stack_order 1, NAME2 with 2, ...
stack_is()
{
	local pid=$1 proc i=0 name
	shift
	json_proc "$pid"
	proc=$JREF
	assert_eq "$(json_len "$proc.patches")" $# "number of patches of process $pid"
	for name in "$@"; do
		json_one "$proc.patches" name "\"$name\""
		assert_json_eq "$JREF.stack_order" $((i + 1))
		# Status lists them in stack order too.
		assert_json_eq "$proc.patches[$i].name" "\"$name\""
		i=$((i + 1))
	done
	log "process $pid: stack $*"
}

# unslash JSON_STRING: json-c writes "/" as "\/".
unslash()
{
	printf '%s' "${1//\\\//\/}"
}

# -------------------------------------------------------------------------
step "1. sysfs test: the fields of an applied patch"
start_target s klp_target
pid=$(target_pid s)
exe=$(mapped_file "$pid")

# % modprobe test_klp_livepatch
apply_lp_log="ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete"
apply_ok "$pid" "$LP" klp_livepatch
check_log s <<<"$apply_lp_log"

old=$(addr "$pid" klp_main_func)
new=$(addr "$pid" patch_klp_livepatch.so:livepatch_klp_main_func)
# enabled 1, transition 0, main/patched 1; libklp_mod.so is not loaded.
status_text_is "$pid" <<EOF
process $pid ($exe)
  patch 'klp_livepatch': enabled=1 transition=0 replace=0 stack_order=1
    object 'main': patched=1
      klp_main_func $old -> $new (livepatch_klp_main_func)
    object 'libklp_mod.so': patched=0
EOF

json_proc "$pid"
proc=$JREF
assert_eq "$(unslash "$(json_get "$proc.exe")")" "\"$exe\"" "--json: exe"
assert_eq "$(json_len "$proc.patches")" 1 "number of patches"
p="$proc.patches[0]"
assert_json_eq "$p.name" '"klp_livepatch"'
patch_fields_are "$p" true false false 1
assert_eq "$(json_len "$p.objects")" 2 "number of objects of klp_livepatch"
assert_json_eq "$p.objects[0].name" '"main"'
assert_json_eq "$p.objects[0].patched" true
assert_eq "$(json_len "$p.objects[0].functions")" 1 "number of functions of main"
f="$p.objects[0].functions[0]"
assert_json_eq "$f.old_name" '"klp_main_func"'
assert_json_eq "$f.old_sympos" 0
assert_json_eq "$f.old_addr" "\"$old\""
assert_json_eq "$f.new_addr" "\"$new\""
assert_json_eq "$f.new_name" '"livepatch_klp_main_func"'
assert_json_eq "$p.objects[1].name" '"libklp_mod.so"'
assert_json_eq "$p.objects[1].patched" false
expect_reply s "call main" "main=main:livepatched"

# % echo 0 > /sys/kernel/livepatch/test_klp_livepatch/enabled; rmmod: the
# patch is gone from the status.
revert_ok "$pid" klp_livepatch
check_log_append s <<'EOF'
ulp: 'klp_livepatch': initializing unpatching transition
ulp: 'klp_livepatch': starting unpatching transition
ulp: 'klp_livepatch': completing unpatching transition
ulp: 'klp_livepatch': unpatching complete
EOF
status_text_is "$pid" <<EOF
process $pid ($exe)
  no patches
EOF
assert_no_patches "$pid"
expect_reply s "call main" "main=main:orig"
stop_target s

# -------------------------------------------------------------------------
step "2. sysfs test object/patched"
start_target o klp_target
pid=$(target_pid o)
exe=$(mapped_file "$pid")

# % modprobe test_klp_callbacks_demo
apply_ok "$pid" "$DEMO" klp_callbacks_demo
check_log o <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
ulp: 'klp_callbacks_demo': patching complete
EOF
old=$(addr "$pid" klp_main_func)
new=$(addr "$pid" patch_klp_callbacks_demo.so:patched_klp_main_func)
object_is "$pid" klp_callbacks_demo libklp_mod.so false
object_is "$pid" klp_callbacks_demo libklp_busy.so false
object_is "$pid" klp_callbacks_demo main true
status_text_is "$pid" <<EOF
process $pid ($exe)
  patch 'klp_callbacks_demo': enabled=1 transition=0 replace=0 stack_order=1
    object 'main': patched=1
      klp_main_func $old -> $new (patched_klp_main_func)
    object 'libklp_mod.so': patched=0
    object 'libklp_busy.so': patched=0
EOF

# % modprobe test_klp_callbacks_mod: patched while it loads.
expect_reply o "load mod" "load mod=ok"
check_log_append o <<'EOF'
ulp: applying patch 'klp_callbacks_demo' to loading object 'libklp_mod.so'
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
EOF
object_is "$pid" klp_callbacks_demo libklp_mod.so true
mod_old=$(addr "$pid" libklp_mod.so:klp_mod_func)
mod_new=$(addr "$pid" patch_klp_callbacks_demo.so:patched_klp_mod_func)
json_one "$JREF.functions" old_name '"klp_mod_func"'
assert_json_eq "$JREF.old_addr" "\"$mod_old\""
assert_json_eq "$JREF.new_addr" "\"$mod_new\""
assert_json_eq "$JREF.new_name" '"patched_klp_mod_func"'
status_text_is "$pid" <<EOF
process $pid ($exe)
  patch 'klp_callbacks_demo': enabled=1 transition=0 replace=0 stack_order=1
    object 'main': patched=1
      klp_main_func $old -> $new (patched_klp_main_func)
    object 'libklp_mod.so': patched=1
      klp_mod_func $mod_old -> $mod_new (patched_klp_mod_func)
    object 'libklp_busy.so': patched=0
EOF
expect_reply o "call mod" "mod=mod:patched"

# % rmmod test_klp_callbacks_mod
expect_reply o "unload mod" "unload mod=ok"
check_log_append o <<'EOF'
klp_callbacks_demo: pre_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
ulp: reverting patch 'klp_callbacks_demo' on unloading object 'libklp_mod.so'
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
EOF
object_is "$pid" klp_callbacks_demo libklp_mod.so false
object_is "$pid" klp_callbacks_demo main true
patch_lines_are "$pid" <<'EOF'
  patch 'klp_callbacks_demo': enabled=1 transition=0 replace=0 stack_order=1
EOF

# % echo 0 > /sys/kernel/livepatch/test_klp_callbacks_demo/enabled
revert_ok "$pid" klp_callbacks_demo
check_log_append o <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
ulp: 'klp_callbacks_demo': unpatching complete
EOF
assert_no_patches "$pid"
stop_target o

# -------------------------------------------------------------------------
step "3. replace: 0 and 1"
start_target r klp_target
pid=$(target_pid r)

ar_enable="ulp: enabling patch 'klp_atomic_replace'
ulp: 'klp_atomic_replace': initializing patching transition
ulp: 'klp_atomic_replace': starting patching transition
ulp: 'klp_atomic_replace': completing patching transition
ulp: 'klp_atomic_replace': patching complete"
ar_disable="ulp: 'klp_atomic_replace': initializing unpatching transition
ulp: 'klp_atomic_replace': starting unpatching transition
ulp: 'klp_atomic_replace': completing unpatching transition
ulp: 'klp_atomic_replace': unpatching complete"

apply_ok "$pid" "$AR" klp_atomic_replace
check_log r <<<"$ar_enable"
json_patch "$pid" klp_atomic_replace
patch_fields_are "$JREF" true false false 1
patch_lines_are "$pid" <<'EOF'
  patch 'klp_atomic_replace': enabled=1 transition=0 replace=0 stack_order=1
EOF
expect_reply r "call main2" "main2=main2:livepatched"
revert_ok "$pid" klp_atomic_replace
check_log_append r <<<"$ar_disable"
assert_no_patches "$pid"

# Alone, an atomic replace replaces nothing: applied like any patch.
apply_ok "$pid" "$AR_REPLACE" klp_atomic_replace
check_log_append r <<<"$ar_enable"
json_patch "$pid" klp_atomic_replace
patch_fields_are "$JREF" true false true 1
patch_lines_are "$pid" <<'EOF'
  patch 'klp_atomic_replace': enabled=1 transition=0 replace=1 stack_order=1
EOF
expect_reply r "call main2" "main2=main2:livepatched"
revert_ok "$pid" klp_atomic_replace
check_log_append r <<<"$ar_disable"
assert_no_patches "$pid"
expect_reply r "call main2" "main2=main2:orig"
stop_target r

# -------------------------------------------------------------------------
step "4. stack_order"
start_target k klp_target
pid=$(target_pid k)

apply_ok "$pid" "$LP" klp_livepatch
apply_ok "$pid" "$AR" klp_atomic_replace
apply_ok "$pid" "$HOT" klp_hot
check_log k <<EOF
$apply_lp_log
$ar_enable
ulp: enabling patch 'klp_hot'
ulp: 'klp_hot': initializing patching transition
ulp: 'klp_hot': starting patching transition
ulp: 'klp_hot': completing patching transition
ulp: 'klp_hot': patching complete
EOF
stack_is "$pid" klp_livepatch klp_atomic_replace klp_hot
patch_lines_are "$pid" <<'EOF'
  patch 'klp_livepatch': enabled=1 transition=0 replace=0 stack_order=1
  patch 'klp_atomic_replace': enabled=1 transition=0 replace=0 stack_order=2
  patch 'klp_hot': enabled=1 transition=0 replace=0 stack_order=3
EOF
expect_reply k "call main" "main=main:livepatched"
expect_reply k "call main2" "main2=main2:livepatched"
expect_reply k "call hot" "hot=1001"

# Reverting the middle patch: the one above moves down to 2.
revert_ok "$pid" klp_atomic_replace
check_log_append k <<<"$ar_disable"
stack_is "$pid" klp_livepatch klp_hot
patch_lines_are "$pid" <<'EOF'
  patch 'klp_livepatch': enabled=1 transition=0 replace=0 stack_order=1
  patch 'klp_hot': enabled=1 transition=0 replace=0 stack_order=2
EOF
expect_reply k "call main" "main=main:livepatched"
expect_reply k "call main2" "main2=main2:orig"
expect_reply k "call hot" "hot=1001"

# An atomic replace on top: the others go (no line for them), it is 1.
apply_ok "$pid" "$AR_REPLACE" klp_atomic_replace
check_log_append k <<<"$ar_enable"
stack_is "$pid" klp_atomic_replace
patch_lines_are "$pid" <<'EOF'
  patch 'klp_atomic_replace': enabled=1 transition=0 replace=1 stack_order=1
EOF
expect_reply k "call main" "main=main:orig"
expect_reply k "call main2" "main2=main2:livepatched"
expect_reply k "call hot" "hot=2"

revert_ok "$pid" klp_atomic_replace
check_log_append k <<<"$ar_disable"
assert_no_patches "$pid"
expect_reply k "call main2" "main2=main2:orig"
check_log_file k
stop_target k

test_done
