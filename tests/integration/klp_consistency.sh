#!/usr/bin/env bash
# klp_consistency: the consistency model around a stalled transition, as in
# the kernel's livepatch (Documentation/livepatch/livepatch.rst, "Consistency
# model"; selftests test-callbacks.sh Test 9, the "busy" module).
#
# klp_target's "busy start 1" runs a thread blocked in read() called
# directly from busy_work_func() (libklp_busy.so), which
# patch_klp_callbacks_demo.so ("klp_callbacks_demo") replaces; "busy start
# 2" blocks one frame further, in its never-patched callee busy_wait_here().
# "busy release" lets it return.  Cases, each in a fresh target:
#   1a. apply --no-wait while held: the transition stalls (status
#       transition=1; `ulpctl threads` shows the thread unpatched, blocked on
#       busy_work_func; the main thread patched); after "busy release" ulpd
#       completes it by itself (polled, bounded), log exact;
#   1b. the same with the thread inside the callee, and a waiting `apply`
#       (in the background) that returns 0 only after the release;
#   2.  apply --timeout 2 while held: exit 1 naming the thread and
#       busy_work_func; the transition is reversed (log exact), calls give
#       the original results; after the release the apply succeeds;
#   3.  while one patch is in transition, apply of another and revert of an
#       applied one are refused ("in transition", EBUSY), nothing changes;
#   4.  `ulpctl force` finishes a stalled transition: "ulp: forcing remaining
#       threads to the patched state", then the post_patch callbacks;
#   5.  16 threads each spending ~90% of their time inside klp_hot_func()
#       ("spin 16"): apply and revert of patch_klp_hot.so complete, and the
#       spinners get the new (then the old) results;
#       A thread created during the stalled transition runs the new
#       version from its very first call.
#   6.  ulpd killed (SIGKILL) during a stalled transition: the target keeps
#       running, answers, and dlopen()/dlclose() of a patched object do not
#       wait for the dead daemon.
# The demo's pre_patch callbacks return 0 here (ULP_DEMO_PRE_PATCH_RET
# unset; see tests/patches/patch_klp_callbacks_demo.c).
. "$(dirname "$0")/lib.sh"

DEMO=$PATCHES/patch_klp_callbacks_demo.so
LP=$PATCHES/patch_klp_livepatch.so
HOT=$PATCHES/patch_klp_hot.so
need_file "$DEMO"
need_file "$LP"
need_file "$HOT"
need_file "$TARGETS/klp_target"
unset ULP_DEMO_PRE_PATCH_RET
start_ulpd

BUSY_TID=
# hold_busy NAME MODE: load libklp_busy.so in target NAME and park its
# thread (MODE 1: in busy_work_func, 2: in its callee); its TID in BUSY_TID.
hold_busy()
{
	local name=$1 mode=$2 pid
	pid=$(target_pid "$name")
	send_cmd "$name" "load busy"
	[ "$REPLY" = "load busy=ok" ] || [ "$REPLY" = "load busy=error: already loaded" ] ||
		fail "target $name: 'load busy' answered '$REPLY'"
	expect_reply "$name" "busy start $mode" "busy start=ok"
	send_cmd "$name" "busy tid"
	BUSY_TID=${REPLY#busy tid=}
	[[ $BUSY_TID =~ ^[1-9][0-9]*$ ]] || fail "target $name: 'busy tid' answered '$REPLY'"
	wait_until "the busy thread ($BUSY_TID) to block in read()" "$WAIT_TIMEOUT" \
		task_in_read "$pid" "$BUSY_TID"
	log "$name: busy thread $BUSY_TID held (mode $mode)"
}

# threads_line TID: the line of `ulpctl threads` ($OUT) for that thread.
threads_line()
{
	awk -v t="$1" '{ f = $1; sub(/:$/, "", f); if (f == t) print }' <<<"$OUT"
}

# assert_stalled PID TID: patch klp_callbacks_demo of PID is in its patching
# transition, held by thread TID (unpatched, blocked on busy_work_func);
# the main thread has switched.
assert_stalled()
{
	local pid=$1 tid=$2 line
	assert_transition "$pid" klp_callbacks_demo true
	ulpctl_ok status -p "$pid"
	line=$(grep -F "patch 'klp_callbacks_demo':" <<<"$OUT" || true)
	assert_contains "$line" "transition=1" "ulpctl status -p $pid"

	ulpctl_ok threads -p "$pid"
	line=$(threads_line "$tid")
	[ -n "$line" ] || fail "ulpctl threads -p $pid: no line for the busy thread $tid: $OUT"
	assert_contains "$line" unpatched "ulpctl threads, busy thread $tid"
	assert_contains "$line" busy_work_func "ulpctl threads, busy thread $tid"
	line=$(threads_line "$pid")
	[ -n "$line" ] || fail "ulpctl threads -p $pid: no line for the main thread: $OUT"
	assert_contains "$line" patched "ulpctl threads, main thread"
	assert_not_contains "$line" unpatched "ulpctl threads, main thread"

	ulpctl_ok threads -p "$pid" --json
	json_load
	assert_json_eq .pid "$pid"
	assert_json_eq .transition.patch '"klp_callbacks_demo"'
	assert_json_eq .transition.direction '"patching"'
	json_one .threads tid "$tid"
	assert_json_eq "$JREF.state" '"unpatched"'
	assert_json_eq "$JREF.blocked_on" '"busy_work_func"'
	json_one .threads tid "$pid"
	assert_json_eq "$JREF.state" '"patched"'
	assert_json_eq "$JREF.blocked_on" ""
	log "stalled as expected: thread $tid unpatched on busy_work_func, main thread patched"
}

# assert_all_patched PID: `ulpctl threads --json` shows no transition and
# every thread patched.
assert_all_patched()
{
	local pid=$1 states
	ulpctl_ok threads -p "$pid" --json
	json_load
	assert_json_eq .transition null
	states=$(awk -F'\t' '$1 ~ /^\.threads\[[0-9]+\]\.state$/ { print $2 }' <<<"$JSON_FLAT" | sort -u)
	[ "$states" = '"patched"' ] || fail "ulpctl threads --json: thread states $states, expected all patched: $OUT"
}

main_patched()
{
	wait_until "target $1's main thread to switch (main=main:patched)" "$CMD_TIMEOUT" \
		reply_is "$1" "call main" "main=main:patched"
}

# -------------------------------------------------------------------------
step "1a. a thread blocked inside busy_work_func stalls the transition"
start_target s klp_target
pid=$(target_pid s)
hold_busy s 1

ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
check_log s <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
EOF
main_patched s
# Long enough for ulpd to have retried (about every second) and failed again.
sleep 2.5
assert_stalled "$pid" "$BUSY_TID"
task_in_read "$pid" "$BUSY_TID" || fail "the busy thread left read() before its release"
check_log_file s
# A thread created now starts in the target state: its very first call
# already runs the new version.  (With ULP_SELF_SWITCH=0, the variant
# klp_consistency_no_self_switch, nothing else could have switched it
# before that call: ulpd's next attempt is up to a second away.)
expect_reply s "thread call main" "thread main=main:patched"

# Released, the old busy_work_func returns; ulpd completes the transition
# by itself.
expect_reply s "busy release" "busy release=ok"
wait_transition_done "$pid" klp_callbacks_demo
check_log_append s <<'EOF'
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
expect_reply s "call main" "main=main:patched"
assert_all_patched "$pid"

ulpctl_ok revert klp_callbacks_demo -p "$pid"
expect_reply s "call main" "main=main:orig"
check_log_append s <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
klp_callbacks_demo: pre_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF

# -------------------------------------------------------------------------
step "1b. the same with the thread inside a callee of busy_work_func; apply waits"
hold_busy s 2
bg_ulpctl_start apply-callee apply "$DEMO" -p "$pid"
main_patched s
sleep 2.5
pid_alive "$BG_PID" ||
	fail "apply completed while a thread had busy_work_func on its stack (below busy_wait_here): $(cat "$BG_OUT.out" "$BG_OUT.err")"
assert_stalled "$pid" "$BUSY_TID"
expect_reply s "busy release" "busy release=ok"
bg_ulpctl_finish
[ "$BG_RC" -eq 0 ] || fail "apply exited $BG_RC after the release: $(cat "$BG_OUT.err")"
assert_contains "$(cat "$BG_OUT.out")" "applied patch 'klp_callbacks_demo' to process $pid" "apply output"
assert_transition "$pid" klp_callbacks_demo false
expect_reply s "call main" "main=main:patched"
check_log_append s <<'EOF'
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
ulpctl_ok revert klp_callbacks_demo -p "$pid"
expect_reply s "call main" "main=main:orig"
stop_target s

# -------------------------------------------------------------------------
step "2. apply --timeout 2 while held: reversed, the blocker named"
start_target to klp_target
pid=$(target_pid to)
hold_busy to 1

run_ulpctl apply "$DEMO" -p "$pid" --timeout 2
[ "$RC" -eq 1 ] || fail "apply --timeout 2 with a held thread exited $RC, expected 1: $OUT $ERR"
assert_contains "$ERR" "ulpctl: " "stderr of apply --timeout 2"
assert_contains "$ERR" busy_work_func "stderr of apply --timeout 2"
assert_contains "$ERR" "$BUSY_TID" "stderr of apply --timeout 2"
assert_printable "$ERR" "stderr of apply --timeout 2"
log "apply --timeout 2: exit 1: ${ERR//$'\n'/ | }"
check_log to <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': reversing transition from patching to unpatching
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
expect_reply to "call main" "main=main:orig"
assert_transition "$pid" klp_callbacks_demo absent
task_in_read "$pid" "$BUSY_TID" || fail "the busy thread left read() before its release"

# Nothing left behind: once the thread is released, the same patch applies.
expect_reply to "busy release" "busy release=ok"
ulpctl_ok apply "$DEMO" -p "$pid" --timeout 30
expect_reply to "call main" "main=main:patched"
ulpctl_ok revert klp_callbacks_demo -p "$pid"
expect_reply to "call main" "main=main:orig"
check_log_append to <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
klp_callbacks_demo: pre_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
stop_target to

# -------------------------------------------------------------------------
step "3. another apply or revert during a transition: refused (EBUSY)"
start_target eb klp_target
pid=$(target_pid eb)
ulpctl_ok apply "$HOT" -p "$pid"
expect_reply eb "call hot" "hot=1001"
hold_busy eb 1
ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
main_patched eb
check_log eb <<'EOF'
ulp: enabling patch 'klp_hot'
ulp: 'klp_hot': initializing patching transition
ulp: 'klp_hot': starting patching transition
ulp: 'klp_hot': completing patching transition
ulp: 'klp_hot': patching complete
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
EOF

expect_fail apply "$LP" -p "$pid" "in transition"
assert_printable "$ERR" "the error of the refused apply"
expect_fail revert klp_hot -p "$pid" "in transition"
assert_printable "$ERR" "the error of the refused revert"
# Nothing changed: no log line, the same transition, klp_hot still applied.
check_log_file eb
assert_transition "$pid" klp_callbacks_demo true
assert_transition "$pid" klp_hot false
assert_transition "$pid" klp_livepatch absent
expect_reply eb "call hot" "hot=1001"
expect_reply eb "call main" "main=main:patched"

expect_reply eb "busy release" "busy release=ok"
wait_transition_done "$pid" klp_callbacks_demo
check_log_append eb <<'EOF'
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
ulpctl_ok revert klp_callbacks_demo -p "$pid"
ulpctl_ok revert klp_hot -p "$pid"
expect_reply eb "call main" "main=main:orig"
expect_reply eb "call hot" "hot=2"
assert_no_patches "$pid"
stop_target eb

# -------------------------------------------------------------------------
step "4. ulpctl force finishes a stalled transition"
start_target f klp_target
pid=$(target_pid f)
hold_busy f 1
ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
main_patched f
check_log f <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
EOF
assert_transition "$pid" klp_callbacks_demo true

ulpctl_ok force klp_callbacks_demo -p "$pid"
check_log_append f <<'EOF'
ulp: forcing remaining threads to the patched state
ulp: 'klp_callbacks_demo': completing patching transition
klp_callbacks_demo: post_patch_callback: main
klp_callbacks_demo: post_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': patching complete
EOF
assert_transition "$pid" klp_callbacks_demo false
assert_all_patched "$pid"
expect_reply f "call main" "main=main:patched"
# The forced thread still finishes its old busy_work_func.
task_in_read "$pid" "$BUSY_TID" || fail "the busy thread left read() before its release"
expect_reply f "busy release" "busy release=ok"

# A forced patch may still be disabled (as in the kernel, where only its
# module stays loaded).  ulp may say that the patch's code stays loaded: the
# kernel prints nothing there, so that line is optional (it is not in
# DESIGN.md's list).
ulpctl_ok revert klp_callbacks_demo -p "$pid"
LOG_IGNORE="ulp: 'klp_callbacks_demo': a thread may still run its code; it stays loaded"
check_log_append f <<'EOF'
ulp: 'klp_callbacks_demo': initializing unpatching transition
klp_callbacks_demo: pre_unpatch_callback: main
klp_callbacks_demo: pre_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting unpatching transition
ulp: 'klp_callbacks_demo': completing unpatching transition
klp_callbacks_demo: post_unpatch_callback: main
klp_callbacks_demo: post_unpatch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': unpatching complete
EOF
LOG_IGNORE=
expect_reply f "call main" "main=main:orig"
stop_target f

# -------------------------------------------------------------------------
step "5. 16 threads ~90% of their time inside the patched function"
start_target sp klp_target
pid=$(target_pid sp)
expect_reply sp "spin 16" "spin=ok"
wait_until "the spinners to return from klp_hot_func" "$WAIT_TIMEOUT" \
	reply_is sp "spin last" "spin last=2"

ulpctl_ok apply "$HOT" -p "$pid"
expect_reply sp "call hot" "hot=1001"
wait_until "every spinner to get the new klp_hot_func" "$WAIT_TIMEOUT" \
	reply_is sp "spin last" "spin last=1001"
assert_transition "$pid" klp_hot false

ulpctl_ok revert klp_hot -p "$pid"
expect_reply sp "call hot" "hot=2"
wait_until "every spinner to get the old klp_hot_func back" "$WAIT_TIMEOUT" \
	reply_is sp "spin last" "spin last=2"
check_log sp <<'EOF'
ulp: enabling patch 'klp_hot'
ulp: 'klp_hot': initializing patching transition
ulp: 'klp_hot': starting patching transition
ulp: 'klp_hot': completing patching transition
ulp: 'klp_hot': patching complete
ulp: 'klp_hot': initializing unpatching transition
ulp: 'klp_hot': starting unpatching transition
ulp: 'klp_hot': completing unpatching transition
ulp: 'klp_hot': unpatching complete
EOF
stop_target sp

assert_ulpd_alive

# -------------------------------------------------------------------------
step "6. ulpd killed during a stalled transition: the target is unharmed"
start_target k klp_target
pid=$(target_pid k)
hold_busy k 1
ulpctl_ok apply "$DEMO" -p "$pid" --no-wait
main_patched k
check_log k <<'EOF'
ulp: enabling patch 'klp_callbacks_demo'
ulp: 'klp_callbacks_demo': initializing patching transition
klp_callbacks_demo: pre_patch_callback: main
klp_callbacks_demo: pre_patch_callback: libklp_busy.so -> [ULP_OBJECT_LIVE] Normal state
ulp: 'klp_callbacks_demo': starting patching transition
EOF
kill_ulpd
sleep 0.5

# timed_cmd NAME COMMAND: like send_cmd; fails if the reply took more than
# 10 s (a dlopen hook waiting for the dead daemon), logs the time.
timed_cmd()
{
	local t0 ms
	t0=$(now_us)
	send_cmd "$1" "$2"
	ms=$((($(now_us) - t0) / 1000))
	log "$1: $2 -> $REPLY (${ms} ms, no daemon)"
	((ms < 10000)) || fail "target $1: '$2' took ${ms} ms without a daemon"
}

pid_alive "$pid" || fail "target k died with ulpd"
timed_cmd k "call main"
[[ $REPLY == main=main:patched || $REPLY == main=main:orig ]] || fail "k: 'call main' answered '$REPLY'"
for round in 1 2 3; do
	timed_cmd k "load mod"
	[ "$REPLY" = "load mod=ok" ] || fail "k: 'load mod' without a daemon answered '$REPLY'"
	timed_cmd k "ctor mod"
	[[ $REPLY == ctor=mod:orig || $REPLY == ctor=mod:patched ]] || fail "k: 'ctor mod' answered '$REPLY'"
	timed_cmd k "call mod"
	[[ $REPLY == mod=mod:orig || $REPLY == mod=mod:patched ]] || fail "k: 'call mod' answered '$REPLY'"
	timed_cmd k "unload mod"
	[ "$REPLY" = "unload mod=ok" ] || fail "k: 'unload mod' without a daemon answered '$REPLY' (round $round)"
done
timed_cmd k "busy release"
[ "$REPLY" = "busy release=ok" ] || fail "k: 'busy release' answered '$REPLY'"
timed_cmd k "call main"
[[ $REPLY == main=main:patched || $REPLY == main=main:orig ]] || fail "k: 'call main' answered '$REPLY'"
timed_cmd k "unload busy"
[ "$REPLY" = "unload busy=ok" ] || fail "k: 'unload busy' answered '$REPLY'"
sleep 0.5
pid_alive "$pid" || fail "target k died after ulpd was killed"
stop_target k
