#!/usr/bin/env bash
# klp_livepatch: the kernel's livepatch selftest test-livepatch.sh (modules
# test_klp_livepatch and test_klp_atomic_replace) for ulp.
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
# The two-patch cases add patch_klp_atomic_replace.so
# ("klp_atomic_replace", the kernel's test_klp_atomic_replace: klp_main2_func
# -> "main2:livepatched", a function klp_livepatch leaves alone; built with
# replace=0, and with replace=1 as patch_klp_atomic_replace_replace.so):
#   4. multiple livepatches: both active at once, each reverted on its own
#      (the newer first), the other staying active;
#   5. atomic replace livepatch: applying the replace=1 patch takes
#      klp_livepatch's klp_main_func back to the original and removes
#      klp_livepatch without a line in the log (the kernel's disabled patch,
#      whose "rmmod" prints nothing; in ulp a revert of it is refused as not
#      applied), until the replacing patch is reverted in turn;
#   6. (ulp) the same with libklp_mod.so loaded: the replaced patch's
#      object goes back to the original too, and later unloading or loading
#      that object involves no patch at all.
# The kernel's "grep 'live patched' /proc/cmdline > /dev/kmsg" lines have no
# place in ulp's event log: "call main" / "call main2" show what runs.
. "$(dirname "$0")/lib.sh"

LP=$PATCHES/patch_klp_livepatch.so
AR=$PATCHES/patch_klp_atomic_replace.so
AR_REPLACE=$PATCHES/patch_klp_atomic_replace_replace.so
need_file "$LP"
need_file "$AR"
need_file "$AR_REPLACE"
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

# apply_ar PID FILE: apply one of the two builds of klp_atomic_replace.
apply_ar()
{
	ulpctl_ok apply "$2" -p "$1"
	assert_contains "$OUT" "applied patch 'klp_atomic_replace' to process $1" "apply output"
}

revert_ar()
{
	ulpctl_ok revert klp_atomic_replace -p "$1"
	assert_contains "$OUT" "reverted patch 'klp_atomic_replace' in process $1" "revert output"
}

# calls NAME MAIN MAIN2: klp_main_func() and klp_main2_func() of target NAME
# return "main:MAIN" and "main2:MAIN2".
calls()
{
	expect_reply "$1" "call main" "main=main:$2"
	expect_reply "$1" "call main2" "main2=main2:$3"
}

# patches_are PID NAME:REPLACE...: `ulpctl status --json` lists exactly these
# patches for process PID, in this order (stack_order 1, 2, ...), each with
# its replace flag (true|false), enabled and out of transition.
patches_are()
{
	local pid=$1 proc i=0 spec
	shift
	ulpctl_ok status --json
	json_load
	json_one .processes pid "$pid"
	proc=$JREF
	assert_eq "$(json_len "$proc.patches")" $# "number of patches of process $pid"
	for spec in "$@"; do
		assert_json_eq "$proc.patches[$i].name" "\"${spec%%:*}\""
		assert_json_eq "$proc.patches[$i].replace" "${spec#*:}"
		assert_json_eq "$proc.patches[$i].stack_order" $((i + 1))
		assert_json_eq "$proc.patches[$i].enabled" true
		assert_json_eq "$proc.patches[$i].transition" false
		i=$((i + 1))
	done
	log "process $pid: patches $*"
}

# patch_mapped PID FILE: the patch file FILE is mapped in process PID (by its
# path, or a copy or memfd of the same name).
patch_mapped()
{
	awk -v f="${2##*/}" 'index($6, f) { found = 1 } END { exit !found }' "/proc/$1/maps"
}

patch_unmapped()
{
	! patch_mapped "$@"
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

# The log of klp_livepatch's apply and revert, and klp_atomic_replace's.
LP_ENABLE="ulp: enabling patch 'klp_livepatch'
ulp: 'klp_livepatch': initializing patching transition
ulp: 'klp_livepatch': starting patching transition
ulp: 'klp_livepatch': completing patching transition
ulp: 'klp_livepatch': patching complete"
LP_DISABLE="ulp: 'klp_livepatch': initializing unpatching transition
ulp: 'klp_livepatch': starting unpatching transition
ulp: 'klp_livepatch': completing unpatching transition
ulp: 'klp_livepatch': unpatching complete"
AR_ENABLE="ulp: enabling patch 'klp_atomic_replace'
ulp: 'klp_atomic_replace': initializing patching transition
ulp: 'klp_atomic_replace': starting patching transition
ulp: 'klp_atomic_replace': completing patching transition
ulp: 'klp_atomic_replace': patching complete"
AR_DISABLE="ulp: 'klp_atomic_replace': initializing unpatching transition
ulp: 'klp_atomic_replace': starting unpatching transition
ulp: 'klp_atomic_replace': completing unpatching transition
ulp: 'klp_atomic_replace': unpatching complete"

# -------------------------------------------------------------------------
step "4. multiple livepatches"
start_target m klp_target
pid=$(target_pid m)
calls m orig orig

# % modprobe test_klp_livepatch
apply_lp "$pid"
check_log m <<<"$LP_ENABLE"
calls m livepatched orig

# % modprobe test_klp_atomic_replace replace=0: both patches active.
apply_ar "$pid" "$AR"
check_log_append m <<<"$AR_ENABLE"
calls m livepatched livepatched
patches_are "$pid" klp_livepatch:false klp_atomic_replace:false

# % echo 0 > .../test_klp_atomic_replace/enabled: the first stays active.
revert_ar "$pid"
check_log_append m <<<"$AR_DISABLE"
calls m livepatched orig
patches_are "$pid" klp_livepatch:false

# % echo 0 > .../test_klp_livepatch/enabled
revert_lp "$pid"
check_log_append m <<<"$LP_DISABLE"
calls m orig orig
assert_no_patches "$pid"
check_log_file m
stop_target m

# -------------------------------------------------------------------------
step "5. atomic replace livepatch"
start_target r klp_target
pid=$(target_pid r)

# % modprobe test_klp_livepatch
apply_lp "$pid"
check_log r <<<"$LP_ENABLE"
calls r livepatched orig
wait_until "patch_klp_livepatch.so to be mapped in process $pid" "$WAIT_TIMEOUT" \
	patch_mapped "$pid" "$LP"

# % modprobe test_klp_atomic_replace replace=1: only the new patch's lines;
# klp_livepatch is disabled without any (no unpatching transition of its
# own: its function went back to the original in the new patch's).
apply_ar "$pid" "$AR_REPLACE"
check_log_append r <<<"$AR_ENABLE"
calls r orig livepatched
patches_are "$pid" klp_atomic_replace:true
# The replaced patch is unloaded from the target (the kernel's module can
# be removed).
wait_until "the replaced patch_klp_livepatch.so to be unloaded from process $pid" \
	"$WAIT_TIMEOUT" patch_unmapped "$pid" "$LP"

# % rmmod test_klp_livepatch prints nothing: ulp has nothing to revert.
expect_fail revert klp_livepatch -p "$pid" "patch 'klp_livepatch' is not applied to process $pid"
calls r orig livepatched
check_log_file r

# % echo 0 > .../test_klp_atomic_replace/enabled
revert_ar "$pid"
check_log_append r <<<"$AR_DISABLE"
calls r orig orig
assert_no_patches "$pid"
check_log_file r
stop_target r

# -------------------------------------------------------------------------
step "6. atomic replace of a patch with a loaded object"
start_target a klp_target
pid=$(target_pid a)
expect_reply a "load mod" "load mod=ok"

apply_lp "$pid"
check_log a <<<"$LP_ENABLE"
calls a livepatched orig
expect_reply a "call mod" "mod=mod:livepatched"

# klp_atomic_replace has no libklp_mod.so object: klp_mod_func goes back to
# the original with klp_main_func.
apply_ar "$pid" "$AR_REPLACE"
check_log_append a <<<"$AR_ENABLE"
calls a orig livepatched
expect_reply a "call mod" "mod=mod:orig"
patches_are "$pid" klp_atomic_replace:true

# No patch has that object any more: it goes and comes untouched, without
# a "reverting patch 'klp_livepatch' on unloading object" line.
expect_reply a "unload mod" "unload mod=ok"
expect_reply a "load mod" "load mod=ok"
expect_reply a "ctor mod" "ctor=mod:orig"
expect_reply a "call mod" "mod=mod:orig"
check_log_file a

revert_ar "$pid"
check_log_append a <<<"$AR_DISABLE"
calls a orig orig
expect_reply a "call mod" "mod=mod:orig"
assert_no_patches "$pid"
expect_reply a "unload mod" "unload mod=ok"
check_log_file a
stop_target a

test_done
