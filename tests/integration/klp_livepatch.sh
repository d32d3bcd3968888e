#!/usr/bin/env bash
# klp_livepatch: the single-patch cases of the kernel's livepatch selftest
# test-livepatch.sh (module test_klp_livepatch) for ulp.
#
# patch_klp_livepatch.so ("klp_livepatch", no callbacks) replaces
# klp_main_func ("main:orig" -> "main:livepatched") in klp_target and
# klp_mod_func ("mod:orig" -> "mod:livepatched") in libklp_mod.so, which
# klp_target dlopen()s on "load mod" and dlclose()s on "unload mod" (the
# kernel's insmod / rmmod of a target module).  Each case runs in a fresh
# target whose event log (`ulpctl log`) starts empty and is compared whole
# and exactly (DESIGN.md, "Event log"):
#   1. basic function patching: apply, revert, apply again, revert again;
#   2. an object dlopen()ed before the patch is applied;
#   3. an object dlopen()ed (twice) while the patch is applied: patched
#      before its constructor runs ("ctor mod" shows the constructor saw
#      "mod:livepatched"), with "ulp: applying patch 'klp_livepatch' to
#      loading object 'libklp_mod.so'" / "ulp: reverting patch ... on
#      unloading object ..." in the log; and after the revert, untouched.
. "$(dirname "$0")/lib.sh"

LP=$PATCHES/patch_klp_livepatch.so
need_file "$LP"
need_file "$TARGETS/klp_target"
start_ulpd

apply_lp()
{
	ulpctl_ok apply "$LP" -p "$1"
	assert_contains "$OUT" "applied patch 'klp_livepatch' to process $1" "apply output"
}

revert_lp()
{
	ulpctl_ok revert klp_livepatch -p "$1"
	assert_contains "$OUT" "reverted patch 'klp_livepatch' in process $1" "revert output"
}

# object_patched PID SONAME true|false: `ulpctl status --json` shows that
# object of patch klp_livepatch as (not) patched.
object_patched()
{
	local proc patch obj
	ulpctl_ok status --json
	json_load
	proc=$(json_find .processes pid "$1")
	[ -n "$proc" ] || fail "status --json: no process $1: $OUT"
	json_one "$proc.patches" name '"klp_livepatch"'
	patch=$JREF
	json_one "$patch.objects" name "\"$2\""
	obj=$JREF
	assert_json_eq "$obj.patched" "$3"
}

# -------------------------------------------------------------------------
step "1. basic function patching"
start_target b klp_target
pid=$(target_pid b)
expect_reply b "call main" "main=main:orig"

apply_lp "$pid"
check_log b <<'EOF'
ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete
EOF
expect_reply b "call main" "main=main:livepatched"
expect_reply b "call mod" "mod=not loaded"

revert_lp "$pid"
check_log_append b <<'EOF'
ulp: 'klp_livepatch': initializing unpatching transition
ulp: 'klp_livepatch': starting unpatching transition
ulp: 'klp_livepatch': completing unpatching transition
ulp: 'klp_livepatch': unpatching complete
EOF
expect_reply b "call main" "main=main:orig"
assert_no_patches "$pid"

# Once reverted, the same patch applies again.
apply_lp "$pid"
expect_reply b "call main" "main=main:livepatched"
revert_lp "$pid"
expect_reply b "call main" "main=main:orig"
check_log_append b <<'EOF'
ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete
ulp: 'klp_livepatch': initializing unpatching transition
ulp: 'klp_livepatch': starting unpatching transition
ulp: 'klp_livepatch': completing unpatching transition
ulp: 'klp_livepatch': unpatching complete
EOF
stop_target b

# -------------------------------------------------------------------------
step "2. an object loaded before the patch"
start_target o klp_target
pid=$(target_pid o)
expect_reply o "load mod" "load mod=ok"
expect_reply o "ctor mod" "ctor=mod:orig"
expect_reply o "call mod" "mod=mod:orig"

apply_lp "$pid"
check_log o <<'EOF'
ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete
EOF
expect_reply o "call main" "main=main:livepatched"
expect_reply o "call mod" "mod=mod:livepatched"
# Its constructor ran long before.
expect_reply o "ctor mod" "ctor=mod:orig"
object_patched "$pid" libklp_mod.so true

revert_lp "$pid"
check_log_append o <<'EOF'
ulp: 'klp_livepatch': initializing unpatching transition
ulp: 'klp_livepatch': starting unpatching transition
ulp: 'klp_livepatch': completing unpatching transition
ulp: 'klp_livepatch': unpatching complete
EOF
expect_reply o "call main" "main=main:orig"
expect_reply o "call mod" "mod=mod:orig"
expect_reply o "unload mod" "unload mod=ok"
check_log_file o
stop_target o

# -------------------------------------------------------------------------
step "3. an object loaded while the patch is applied"
start_target l klp_target
pid=$(target_pid l)

apply_lp "$pid"
check_log l <<'EOF'
ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete
EOF
expect_reply l "call main" "main=main:livepatched"
expect_reply l "call mod" "mod=not loaded"

for round in 1 2; do
	log "load / unload round $round"
	expect_reply l "load mod" "load mod=ok"
	check_log_append l <<'EOF'
ulp: applying patch 'klp_livepatch' to loading object 'libklp_mod.so'
EOF
	# Patched before its constructor ran.
	expect_reply l "ctor mod" "ctor=mod:livepatched"
	expect_reply l "call mod" "mod=mod:livepatched"
	expect_reply l "call main" "main=main:livepatched"
	object_patched "$pid" libklp_mod.so true

	expect_reply l "unload mod" "unload mod=ok"
	check_log_append l <<'EOF'
ulp: reverting patch 'klp_livepatch' on unloading object 'libklp_mod.so'
EOF
	expect_reply l "call mod" "mod=not loaded"
	expect_reply l "call main" "main=main:livepatched"
done

# Loaded again and left loaded: reverted with the rest.
expect_reply l "load mod" "load mod=ok"
check_log_append l <<'EOF'
ulp: applying patch 'klp_livepatch' to loading object 'libklp_mod.so'
EOF
expect_reply l "call mod" "mod=mod:livepatched"

revert_lp "$pid"
check_log_append l <<'EOF'
ulp: 'klp_livepatch': initializing unpatching transition
ulp: 'klp_livepatch': starting unpatching transition
ulp: 'klp_livepatch': completing unpatching transition
ulp: 'klp_livepatch': unpatching complete
EOF
expect_reply l "call main" "main=main:orig"
expect_reply l "call mod" "mod=mod:orig"
assert_no_patches "$pid"

# No patch any more: the object comes and goes untouched.
expect_reply l "unload mod" "unload mod=ok"
expect_reply l "load mod" "load mod=ok"
expect_reply l "ctor mod" "ctor=mod:orig"
expect_reply l "call mod" "mod=mod:orig"
expect_reply l "unload mod" "unload mod=ok"
check_log_file l
stop_target l

# A forked child shares the runtime's channel to ulpd, but ulpd patched the
# parent: the child's dlopen must neither reach ulpd (which would act on the
# parent, or refuse the child's load) nor wait for it.  The parent's log
# does not change.
step "object loaded by a forked child of a patched process"
start_target f klp_target
pid=$(target_pid f)
apply_lp "$pid"
check_log f <<'EOF'
ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete
EOF
expect_reply f "fork load mod" "fork load mod=mod=mod:orig"
expect_reply f "call main" "main=main:livepatched"
sleep 0.5
check_log_file f
stop_target f

test_done
