#!/usr/bin/env bash
# klp_callbacks: the kernel's (un)patching callbacks test cases, Tests 1-9 of
# Documentation/livepatch/callbacks.rst (selftest test-callbacks.sh), for ulp
# (/work/shared/seeds/000_f031fc6069cc770f.txt).
#
# Kernel -> ulp:
#   vmlinux                          klp_target (object "main")
#   livepatch-callbacks-mod.ko       libklp_mod.so   ("load mod" / "unload mod")
#   livepatch-callbacks-busymod.ko   libklp_busy.so  ("load busy", "busy start
#                                    0|1": its worker returns at once / blocks
#                                    in busy_work_func until "busy release")
#   livepatch-callbacks-demo.ko      patch_klp_callbacks_demo.so
#                                    ("klp_callbacks_demo")
#   test_klp_callbacks_demo2.ko      patch_klp_callbacks_demo2.so
#                                    ("klp_callbacks_demo2": callbacks for
#                                    main, no function); replace=1:
#                                    patch_klp_callbacks_demo2_replace.so
#   insmod demo / echo 0 > enabled   ulpctl apply / ulpctl revert
#   dmesg                            ulpctl log -p PID (the event log)
#   pre_patch_ret=-19 (parameter)    the file $ULP_DEMO_PRE_PATCH_RET of the
#                                    target: every pre_patch callback of the
#                                    demo reads its return value from the file
#                                    named by that environment variable of the
#                                    target process (no file: 0); see
#                                    tests/patches/patch_klp_callbacks_demo.c
#
# Each test runs in a fresh target, whose event log starts empty, and
# compares its WHOLE log exactly with the kernel's expected dmesg, translated
# (DESIGN.md, "Event log"): "livepatch: " -> "ulp: ", vmlinux -> main, module
# -> object, "[MODULE_STATE_COMING] Full formed, running module_init" ->
# "[ULP_OBJECT_COMING] Fully formed, running constructors", LIVE / GOING
# likewise, "canceling transition" -> "canceling patching transition",
# "refusing to load module" -> "patch 'X' failed for object 'Y', refusing to
# load object 'Y'".  The modules' own printk lines (livepatch_callbacks_mod_init
# ...) are not in ulp's log: the replies of "ctor mod" (what klp_mod_func()
# returned when libklp_mod.so's constructor ran), "call mod" and "call main"
# show which code ran instead.
#
# Tests 10 and 11 are test-callbacks.sh's "multiple livepatches" and
# "atomic replace": two patches, each with its callbacks; with the second
# one an atomic replace, the first is removed without running any of its
# callbacks (its "% rmmod" prints nothing; in ulp a revert of it is refused
# as not applied).  Test 12 (ulp's own) is the atomic replace again with
# libklp_mod.so loaded: none of the replaced patch's callbacks run for that
# object either, at the replace or when the object goes later.
. "$(dirname "$0")/lib.sh"

DEMO=$PATCHES/patch_klp_callbacks_demo.so
DEMO2=$PATCHES/patch_klp_callbacks_demo2.so
DEMO2_REPLACE=$PATCHES/patch_klp_callbacks_demo2_replace.so
need_file "$DEMO"
need_file "$DEMO2"
need_file "$DEMO2_REPLACE"
need_file "$TARGETS/klp_target"

# The demo's pre_patch return value (see above); absent = 0.
export ULP_DEMO_PRE_PATCH_RET=$TMP/demo_pre_patch_ret
pre_patch_ret()
{
	printf '%s\n' "$1" >"$ULP_DEMO_PRE_PATCH_RET"
	log "demo pre_patch callbacks now return $1"
}
pre_patch_ok()
{
	rm -f "$ULP_DEMO_PRE_PATCH_RET"
}

start_ulpd

# calls NAME MAIN MOD: klp_main_func() and klp_mod_func() of target NAME
# return "main:MAIN" and "mod:MOD" (MOD "-": libklp_mod.so not loaded).
calls()
{
	expect_reply "$1" "call main" "main=main:$2"
	if [ "$3" = - ]; then
		expect_reply "$1" "call mod" "mod=not loaded"
	else
		expect_reply "$1" "call mod" "mod=mod:$3"
	fi
}

apply_demo()
{
	ulpctl_ok apply "$DEMO" -p "$1"
	assert_contains "$OUT" "applied patch 'klp_callbacks_demo' to process $1" "apply output"
}

revert_demo()
{
	ulpctl_ok revert klp_callbacks_demo -p "$1"
	assert_contains "$OUT" "reverted patch 'klp_callbacks_demo' in process $1" "revert output"
}

# apply_demo2 PID FILE: apply one of the two builds of klp_callbacks_demo2.
apply_demo2()
{
	ulpctl_ok apply "$2" -p "$1"
	assert_contains "$OUT" "applied patch 'klp_callbacks_demo2' to process $1" "apply output"
}

revert_demo2()
{
	ulpctl_ok revert klp_callbacks_demo2 -p "$1"
	assert_contains "$OUT" "reverted patch 'klp_callbacks_demo2' in process $1" "revert output"
}

# patches_are PID NAME...: `ulpctl status --json` lists exactly these
# patches for process PID, in this order (stack_order 1, 2, ...).
patches_are()
{
	local pid=$1 proc i=0 name
	shift
	ulpctl_ok status --json
	json_load
	json_one .processes pid "$pid"
	proc=$JREF
	assert_eq "$(json_len "$proc.patches")" $# "number of patches of process $pid"
	for name in "$@"; do
		assert_json_eq "$proc.patches[$i].name" "\"$name\""
		assert_json_eq "$proc.patches[$i].stack_order" $((i + 1))
		i=$((i + 1))
	done
	log "process $pid: patches $*"
}

# -------------------------------------------------------------------------
step "Test 1: load mod, apply, revert, unload mod"
start_target t1 klp_target
pid=$(target_pid t1)
expect_reply t1 "load mod" "load mod=ok"
expect_reply t1 "ctor mod" "ctor=mod:orig" # livepatch_callbacks_mod_init
calls t1 orig orig

apply_demo "$pid"
check_log t1 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
calls t1 patched patched

revert_demo "$pid"
check_log_append t1 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
klp_callbacks_demo: pre_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t1 orig orig

# The patch is gone: unloading the object runs no callback.
expect_reply t1 "unload mod" "unload mod=ok"
check_log_file t1
stop_target t1

# -------------------------------------------------------------------------
step "Test 2: apply, load mod, revert, unload mod"
start_target t2 klp_target
pid=$(target_pid t2)

apply_demo "$pid"
check_log t2 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
ulp: 'klp_callbacks_demo': patching complete
EOF
calls t2 patched -

# module_coming: patched (pre_patch and post_patch run) before its
# constructor, which already sees the new klp_mod_func.
expect_reply t2 "load mod" "load mod=ok"
check_log_append t2 <<'EOF'
ulp: applying patch 'klp_callbacks_demo' to loading object 'libklp_mod.so'
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
EOF
expect_reply t2 "ctor mod" "ctor=mod:patched"
calls t2 patched patched

revert_demo "$pid"
check_log_append t2 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
klp_callbacks_demo: pre_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t2 orig orig

expect_reply t2 "unload mod" "unload mod=ok"
check_log_file t2
stop_target t2

# -------------------------------------------------------------------------
step "Test 3: load mod, apply, unload mod, revert"
start_target t3 klp_target
pid=$(target_pid t3)
expect_reply t3 "load mod" "load mod=ok"
expect_reply t3 "ctor mod" "ctor=mod:orig"

apply_demo "$pid"
check_log t3 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
calls t3 patched patched

# module_going: only that object is reverted, with its unpatch callbacks.
expect_reply t3 "unload mod" "unload mod=ok"
check_log_append t3 <<'EOF'
klp_callbacks_demo: pre_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
ulp: reverting patch 'klp_callbacks_demo' on unloading object 'libklp_mod.so'
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
EOF
calls t3 patched -

revert_demo "$pid"
check_log_append t3 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t3 orig -
stop_target t3

# -------------------------------------------------------------------------
step "Test 4: apply, load mod, unload mod, revert"
start_target t4 klp_target
pid=$(target_pid t4)

apply_demo "$pid"
check_log t4 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
ulp: 'klp_callbacks_demo': patching complete
EOF

expect_reply t4 "load mod" "load mod=ok"
check_log_append t4 <<'EOF'
ulp: applying patch 'klp_callbacks_demo' to loading object 'libklp_mod.so'
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
EOF
expect_reply t4 "ctor mod" "ctor=mod:patched"
calls t4 patched patched

expect_reply t4 "unload mod" "unload mod=ok"
check_log_append t4 <<'EOF'
klp_callbacks_demo: pre_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
ulp: reverting patch 'klp_callbacks_demo' on unloading object 'libklp_mod.so'
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
EOF

revert_demo "$pid"
check_log_append t4 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t4 orig -
stop_target t4

# -------------------------------------------------------------------------
step "Test 5: apply and revert, mod never loaded"
start_target t5 klp_target
pid=$(target_pid t5)

apply_demo "$pid"
check_log t5 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
ulp: 'klp_callbacks_demo': patching complete
EOF
calls t5 patched -

revert_demo "$pid"
check_log_append t5 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t5 orig -
stop_target t5

# -------------------------------------------------------------------------
step "Test 6: load mod, apply with main's pre_patch failing (-ENODEV)"
start_target t6 klp_target
pid=$(target_pid t6)
expect_reply t6 "load mod" "load mod=ok"
expect_reply t6 "ctor mod" "ctor=mod:orig"

pre_patch_ret -19
# insmod: ERROR: could not insert module ...: No such device
expect_fail apply "$DEMO" -p "$pid" "No such device"
assert_printable "$ERR" "the error of the refused apply"
check_log t6 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: pre-patch callback failed for object 'main'
ulp: failed to enable patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': canceling patching transition, going to unpatch
ulp: 'klp_callbacks_demo': completing unpatching transition
ulp: 'klp_callbacks_demo': unpatching complete
EOF
pre_patch_ok
calls t6 orig orig
assert_transition "$pid" klp_callbacks_demo absent

expect_reply t6 "unload mod" "unload mod=ok"
check_log_file t6
stop_target t6

# -------------------------------------------------------------------------
step "Test 7: apply, then load mod with its pre_patch failing (-ENODEV)"
start_target t7 klp_target
pid=$(target_pid t7)

apply_demo "$pid"
check_log t7 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
ulp: 'klp_callbacks_demo': patching complete
EOF

pre_patch_ret -19
# The object is not patched, and no other callback runs for it.  ulp
# refuses the dlopen() when it can (insmod: ... No such device); otherwise
# the object loads unpatched.  The log is the same either way.
send_cmd t7 "load mod"
mod_loaded=
# With glibc 2.35-2.40 (Debian 12 has 2.36) the refusal must fail the dlopen.
glibc=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')
glibc_minor=${glibc#2.}
glibc_minor=${glibc_minor%%.*}
if [ "${glibc%%.*}" = 2 ] && [ "$glibc_minor" -ge 35 ] && [ "$glibc_minor" -le 40 ] &&
	[ "$REPLY" = "load mod=ok" ]; then
	fail "t7: with glibc $glibc the refused object must fail the dlopen, but it loaded"
fi
case $REPLY in
"load mod=error: "*)
	log "t7: load mod -> $REPLY (refused)"
	assert_contains "$REPLY" "ulp: patch 'klp_callbacks_demo' refused to load object 'libklp_mod.so': No such device" "the dlopen error"
	expect_reply t7 "call mod" "mod=not loaded"
	expect_reply t7 "ctor mod" "ctor=not loaded"
	;;
"load mod=ok")
	log "t7: load mod -> $REPLY (loaded, not patched)"
	mod_loaded=1
	expect_reply t7 "ctor mod" "ctor=mod:orig"
	expect_reply t7 "call mod" "mod=mod:orig"
	;;
*) fail "t7: 'load mod' answered '$REPLY', expected 'load mod=error: ...' or 'load mod=ok'" ;;
esac
check_log_append t7 <<'EOF'
ulp: applying patch 'klp_callbacks_demo' to loading object 'libklp_mod.so'
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
ulp: pre-patch callback failed for object 'libklp_mod.so'
ulp: patch 'klp_callbacks_demo' failed for object 'libklp_mod.so', refusing to load object 'libklp_mod.so'
EOF
expect_reply t7 "call main" "main=main:patched"

# Unpatch callbacks run for main only.
revert_demo "$pid"
check_log_append t7 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
ulp: 'klp_callbacks_demo': unpatching complete
EOF
pre_patch_ok
expect_reply t7 "call main" "main=main:orig"
if [ -n "$mod_loaded" ]; then
	expect_reply t7 "call mod" "mod=mod:orig"
	expect_reply t7 "unload mod" "unload mod=ok"
	check_log_file t7
fi
stop_target t7

# -------------------------------------------------------------------------
step "Test 8: load busy (returns at once), apply, load mod, unload mod, revert"
start_target t8 klp_target
pid=$(target_pid t8)
expect_reply t8 "load busy" "load busy=ok"
# busymod_work_func, sleeping 0 seconds ... busymod_work_func exit
expect_reply t8 "busy start 0" "busy start=ok"
expect_reply t8 "busy release" "busy release=ok"

apply_demo "$pid"
check_log t8 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
calls t8 patched -

expect_reply t8 "load mod" "load mod=ok"
check_log_append t8 <<'EOF'
ulp: applying patch 'klp_callbacks_demo' to loading object 'libklp_mod.so'
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
EOF
expect_reply t8 "ctor mod" "ctor=mod:patched"
calls t8 patched patched

expect_reply t8 "unload mod" "unload mod=ok"
check_log_append t8 <<'EOF'
klp_callbacks_demo: pre_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
ulp: reverting patch 'klp_callbacks_demo' on unloading object 'libklp_mod.so'
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
EOF

revert_demo "$pid"
check_log_append t8 <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
klp_callbacks_demo: pre_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t8 orig -

expect_reply t8 "unload busy" "unload busy=ok"
check_log_file t8
stop_target t8

# -------------------------------------------------------------------------
step "Test 9: busy thread in busy_work_func stalls the transition; load and unload mod meanwhile; revert reverses it"
start_target t9 klp_target
pid=$(target_pid t9)
expect_reply t9 "load busy" "load busy=ok"
# busymod_work_func, sleeping 30 seconds ...
expect_reply t9 "busy start 1" "busy start=ok"
send_cmd t9 "busy tid"
busy_tid=${REPLY#busy tid=}
[ "$busy_tid" -gt 0 ] 2>/dev/null || fail "t9: 'busy tid' answered '$REPLY'"
wait_until "the busy thread ($busy_tid) to block in read() inside busy_work_func" \
	"$WAIT_TIMEOUT" task_in_read "$pid" "$busy_tid"

# The transition does not complete: busy_work_func is on the busy thread's
# stack.  --no-wait leaves it to ulpd.
ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
check_log t9 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
EOF
assert_transition "$pid" klp_callbacks_demo true
# The main thread (blocked in fgets(), nothing patched on its stack)
# switches to the patched state on ulpd's first pass.
wait_until "t9's main thread to switch (main=main:patched)" "$CMD_TIMEOUT" \
	reply_is t9 "call main" "main=main:patched"

# No post_patch callback while the patch is in transition.  The loading
# (main) thread is already patched: the constructor sees the new function.
expect_reply t9 "load mod" "load mod=ok"
check_log_append t9 <<'EOF'
ulp: applying patch 'klp_callbacks_demo' to loading object 'libklp_mod.so'
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_COMING] Fully formed, running constructors
EOF
expect_reply t9 "ctor mod" "ctor=mod:patched"
calls t9 patched patched

# Still in transition: no pre_unpatch callback.
expect_reply t9 "unload mod" "unload mod=ok"
check_log_append t9 <<'EOF'
ulp: reverting patch 'klp_callbacks_demo' on unloading object 'libklp_mod.so'
klp_callbacks_demo: post_unpatch_callback: libklp_mod.so -> [ULP_OBJECT_GOING] Going away
EOF
assert_transition "$pid" klp_callbacks_demo true
# (ulpd's retries of the transition interrupt it now and then: between such
# a stop and its read() made again, /proc says "running" for a moment)
wait_until "t9: the busy thread to be in read(), not released" 5 \
	task_in_read "$pid" "$busy_tid"

# Revert during the patching transition reverses it; no pre_unpatch
# callback (no post_patch ran).  The busy thread never left the unpatched
# state, so the unpatching transition completes while it still blocks.
revert_demo "$pid"
check_log_append t9 <<'EOF'
ulp: 'klp_callbacks_demo': reversing transition from patching to unpatching
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
calls t9 orig -
assert_transition "$pid" klp_callbacks_demo absent

# busymod_work_func exit: the old busy_work_func returns.
expect_reply t9 "busy release" "busy release=ok"
expect_reply t9 "unload busy" "unload busy=ok"
check_log_file t9
stop_target t9

# The logs of klp_callbacks_demo (libklp_mod.so and libklp_busy.so not
# loaded) and klp_callbacks_demo2 being applied and reverted.
DEMO_ENABLE="ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
ulp: 'klp_callbacks_demo': patching complete"
DEMO_DISABLE="ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
ulp: 'klp_callbacks_demo': unpatching complete"
DEMO2_ENABLE="ulp: enabling patch 'klp_callbacks_demo2'
ulp: 'klp_callbacks_demo2': initializing patching transition
klp_callbacks_demo2: pre_patch_callback: main
ulp: 'klp_callbacks_demo2': starting patching transition
ulp: 'klp_callbacks_demo2': completing patching transition
klp_callbacks_demo2: post_patch_callback: main
ulp: 'klp_callbacks_demo2': patching complete"
DEMO2_DISABLE="ulp: 'klp_callbacks_demo2': initializing unpatching transition
klp_callbacks_demo2: pre_unpatch_callback: main
ulp: 'klp_callbacks_demo2': starting unpatching transition
ulp: 'klp_callbacks_demo2': completing unpatching transition
klp_callbacks_demo2: post_unpatch_callback: main
ulp: 'klp_callbacks_demo2': unpatching complete"

# -------------------------------------------------------------------------
step "Test 10: multiple livepatches: apply demo, apply demo2, revert demo2, revert demo"
start_target t10 klp_target
pid=$(target_pid t10)

apply_demo "$pid"
check_log t10 <<<"$DEMO_ENABLE"
calls t10 patched -

# Each patch's callbacks run as that patch goes through its transitions.
apply_demo2 "$pid" "$DEMO2"
check_log_append t10 <<<"$DEMO2_ENABLE"
patches_are "$pid" klp_callbacks_demo klp_callbacks_demo2
# demo2 has no function: klp_main_func stays demo's.
calls t10 patched -

revert_demo2 "$pid"
check_log_append t10 <<<"$DEMO2_DISABLE"
patches_are "$pid" klp_callbacks_demo
calls t10 patched -

revert_demo "$pid"
check_log_append t10 <<<"$DEMO_DISABLE"
calls t10 orig -
assert_no_patches "$pid"
check_log_file t10
stop_target t10

# -------------------------------------------------------------------------
step "Test 11: atomic replace: apply demo, apply demo2 (replace=1), revert demo2"
start_target t11 klp_target
pid=$(target_pid t11)

apply_demo "$pid"
check_log t11 <<<"$DEMO_ENABLE"
calls t11 patched -

# demo is disabled by the replace without any of its callbacks: only
# demo2's pre_patch and post_patch run.
apply_demo2 "$pid" "$DEMO2_REPLACE"
check_log_append t11 <<<"$DEMO2_ENABLE"
patches_are "$pid" klp_callbacks_demo2
# demo2 has no function: nothing of demo is left in place.
calls t11 orig -

# Now the replacing patch's own unpatch callbacks do run.
revert_demo2 "$pid"
check_log_append t11 <<<"$DEMO2_DISABLE"
calls t11 orig -
assert_no_patches "$pid"

# % rmmod test_klp_callbacks_demo prints nothing: demo went with the
# replace, there is nothing to revert.
expect_fail revert klp_callbacks_demo -p "$pid" \
	"patch 'klp_callbacks_demo' is not applied to process $pid"
check_log_file t11
stop_target t11

# -------------------------------------------------------------------------
step "Test 12 (ulp): atomic replace with libklp_mod.so loaded"
start_target t12 klp_target
pid=$(target_pid t12)
expect_reply t12 "load mod" "load mod=ok"
expect_reply t12 "ctor mod" "ctor=mod:orig"

apply_demo "$pid"
check_log t12 <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_mod.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
calls t12 patched patched

# No callback of demo, for main or for libklp_mod.so; both functions go
# back to the original (demo2 has none).
apply_demo2 "$pid" "$DEMO2_REPLACE"
check_log_append t12 <<<"$DEMO2_ENABLE"
patches_are "$pid" klp_callbacks_demo2
calls t12 orig orig

# No patch has libklp_mod.so any more: unloading and loading it again
# involves no patch and runs no callback.
expect_reply t12 "unload mod" "unload mod=ok"
expect_reply t12 "load mod" "load mod=ok"
expect_reply t12 "ctor mod" "ctor=mod:orig"
calls t12 orig orig
check_log_file t12

revert_demo2 "$pid"
check_log_append t12 <<<"$DEMO2_DISABLE"
calls t12 orig orig
assert_no_patches "$pid"
expect_reply t12 "unload mod" "unload mod=ok"
check_log_file t12
stop_target t12

test_done
