#!/usr/bin/env bash
# crash_recovery: ulpd killed with SIGKILL at every step of the runtime's
# injection, an apply, a revert and their transitions (ULPD_FAULT=STEP[:N]
# makes ulpd kill itself at the Nth passage of STEP, see
# libpatch/recovery.h).  After each crash
# the target keeps running and answering; a ulpd started again adopts it
# from the state the first one saved in it: the patch is either gone (an
# apply cut short before its transition began is undone) or listed and
# brought to an end, each callback has run once, and after a final revert
# the code bytes are the original ones.
#
# Targets: target_basic with patch_compute.so for the injection (its
# borrowed thread checks its registers afterwards); klp_target with
# patch_klp_callbacks_demo.so for the rest ("main" loaded: one object with
# callbacks; klp_main_func "main:orig" -> "main:patched").
. "$(dirname "$0")/lib.sh"

DEMO=$PATCHES/patch_klp_callbacks_demo.so
need_file "$DEMO"
need_file "$TARGETS/klp_target"

# ulpd_with_fault STEP: a ulpd that kills itself at STEP ("" for none).
ulpd_with_fault()
{
	need_file "$ULPD_BIN"
	mkdir -p "$TMP/state"
	ULPD_FAULT=$1 "$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" \
		--runtime "$ULP_RUNTIME" </dev/null >>"$TMP/ulpd.log" 2>&1 &
	ULPD_PID=$!
	track_pid "$ULPD_PID"
	wait_until "ulpd to accept connections on $SOCK" "$WAIT_TIMEOUT" ulpd_answers
}

# ulpd_crashed: the faulty ulpd is gone (killed itself at its step).
ulpd_crashed()
{
	wait_until "ulpd to kill itself at its step" "$WAIT_TIMEOUT" pid_gone "$ULPD_PID"
	[ "$(grep -c "ULPD_FAULT: killed at step" "$TMP/ulpd.log")" -eq "$CRASHES" ] ||
		fail "ulpd did not die at its fault point (see ulpd.log)"
	untrack_pid "$ULPD_PID"
	ULPD_PID=
}

# patch_state PID: STATE is "absent", "transition" or "applied" (status --json).
patch_state()
{
	local tr
	ulpctl_ok status --json
	tr=$(jq -r --argjson p "$1" '.processes[] | select(.pid == $p) | .patches[] |
		select(.name == "klp_callbacks_demo") | .transition' <<<"$OUT")
	case $tr in
	"") STATE=absent ;;
	true) STATE=transition ;;
	*) STATE=applied ;;
	esac
}

settled()
{
	patch_state "$1"
	[ "$STATE" != transition ]
}

# callbacks_once NAME: each callback line of klp_callbacks_demo appears at
# most once per apply / revert in the event log so far (never run twice).
callbacks_once()
{
	local pid=$1 max=$2 cb n
	ulpctl_ok log -p "$pid"
	for cb in pre_patch_callback post_patch_callback pre_unpatch_callback \
		post_unpatch_callback; do
		n=$(grep -c "^klp_callbacks_demo: $cb: main$" <<<"$OUT" || true)
		[ "$n" -le "$max" ] || fail "$cb ran $n times (at most $max expected): $OUT"
	done
}

# one_crash KIND STEP: a fresh target; KIND apply: apply under a ulpd
# killed at STEP; KIND revert: apply, then revert under such a ulpd.
one_crash()
{
	local kind=$1 fault=$2 pid state
	step "ulpd killed during $kind at '$fault'"
	start_target c klp_target
	pid=$(target_pid c)
	expect_reply c "call main" "main=main:orig"
	snapshot_target c orig klp_main_func
	if [ "$kind" = revert ]; then
		ulpd_with_fault ""
		ulpctl_ok apply "$DEMO" -p "$pid"
		kill_pid "$ULPD_PID" TERM
		untrack_pid "$ULPD_PID"
		ULPD_PID=
	fi
	ulpd_with_fault "$fault"
	CRASHES=$((CRASHES + 1))
	if [ "$kind" = apply ]; then
		run_ulpctl apply "$DEMO" -p "$pid"
	else
		run_ulpctl revert klp_callbacks_demo -p "$pid"
	fi
	[ "$RC" -ne 0 ] || fail "$kind succeeded although ulpd was to die at '$fault'"
	ulpd_crashed
	# the target never noticed
	pid_alive "$pid" || fail "target died with ulpd at '$fault'"
	send_cmd c "call main"
	[[ $REPLY == main=main:orig || $REPLY == main=main:patched ]] ||
		fail "target answers '$REPLY' after ulpd died at '$fault'"

	ulpd_with_fault ""
	wait_until "the adopted transition to end" "$WAIT_TIMEOUT" settled "$pid"
	patch_state "$pid"
	state=$STATE
	log "after '$fault' ($kind): patch $state"
	case $state in
	applied) expect_reply c "call main" "main=main:patched" ;;
	absent) expect_reply c "call main" "main=main:orig" ;;
	esac
	callbacks_once "$pid" 1
	# whatever state it is in, it can be brought back to the original
	if [ "$state" = absent ]; then
		ulpctl_ok apply "$DEMO" -p "$pid"
		expect_reply c "call main" "main=main:patched"
	fi
	ulpctl_ok revert klp_callbacks_demo -p "$pid"
	expect_reply c "call main" "main=main:orig"
	snapshot_target c reverted klp_main_func
	assert_same_code c orig reverted
	assert_no_patches "$pid"
	# nothing of the patch left loaded (a crash in its dlopen() included)
	! grep -q "memfd:${DEMO##*/}" "/proc/$pid/maps" ||
		fail "the patch is still mapped after '$fault': $(grep memfd: "/proc/$pid/maps")"
	kill_pid "$ULPD_PID" TERM
	untrack_pid "$ULPD_PID"
	ULPD_PID=
	stop_target c
}

# one_injection_crash STEP: ulpd killed at STEP of the runtime's injection
# (STEP "" for none).  The target's main thread, the one borrowed, waits
# in read() with known values in its registers (parkregs): it must come
# back to that read with every register as it was, also when ulpd dies
# with the thread's registers pointing into ulp's call stub.
one_injection_crash()
{
	local fault=$1 pid tid
	step "runtime injection, ulpd killed at '${fault:-nowhere}'"
	start_target r target_basic
	pid=$(target_pid r)
	expect_reply r "call 5" "compute(5)=6"
	printf 'parkregs\n' >&"${TFD[r]}"
	wait_until "the main thread to wait in read()" "$WAIT_TIMEOUT" task_in_read "$pid" "$pid"
	ulpd_with_fault "$fault"
	run_ulpctl apply "$COMPUTE" -p "$pid"
	if [ -n "$fault" ]; then
		CRASHES=$((CRASHES + 1))
		[ "$RC" -ne 0 ] || fail "apply succeeded although ulpd was to die at '$fault'"
		ulpd_crashed
		pid_alive "$pid" || fail "target died with ulpd at '$fault'"
		ulpd_with_fault ""
	else
		[ "$RC" -eq 0 ] || fail "apply exited $RC: $ERR"
	fi
	# the borrowed thread is back in its read() (made again), registers whole
	wait_until "the main thread to wait in read() again" "$WAIT_TIMEOUT" task_in_read "$pid" "$pid"
	expect_reply r "" "parkregs=ok"
	# the process can be patched (the runtime loaded then, or now) and reverted
	if [ -n "$fault" ]; then
		ulpctl_ok apply "$COMPUTE" -p "$pid"
	fi
	expect_reply r "call 5" "compute(5)=15"
	ulpctl_ok revert compute_fix -p "$pid"
	expect_reply r "call 5" "compute(5)=6"
	[ "$(grep -c libulp-rt "/proc/$pid/maps")" -gt 0 ] || fail "no runtime mapped in $pid"
	kill_pid "$ULPD_PID" TERM
	untrack_pid "$ULPD_PID"
	ULPD_PID=
	stop_target r
}

COMPUTE=$PATCHES/patch_compute.so
need_file "$COMPUTE"
CRASHES=0
# remote-syscall:N counts the called functions' own system-call stops:
# 1 and 2 are mmap()'s entry and exit, from 3 on pthread_create()'s.
for f in "" inject-borrowed remote-frame remote-call:1 remote-syscall:1 remote-syscall:2 \
	remote-done:1 remote-call:2 remote-syscall:3 remote-syscall:6 remote-done:2 \
	inject-loading; do
	one_injection_crash "$f"
done

step "a remote call that faults: the borrowed thread gets its own state back"
start_target r target_basic
pid=$(target_pid r)
printf 'parkregs\n' >&"${TFD[r]}"
wait_until "the main thread to wait in read()" "$WAIT_TIMEOUT" task_in_read "$pid" "$pid"
# the second call of the injection (pthread_create) jumps to address 1
ulpd_with_fault remote-crash:2
run_ulpctl apply "$COMPUTE" -p "$pid"
[ "$RC" -ne 0 ] || fail "apply succeeded although its remote call faulted"
assert_contains "$ERR" "crashed at 0x1 in thread $pid" "apply with a faulting call"
pid_alive "$pid" || fail "the target died of the faulting call"
pid_alive "$ULPD_PID" || fail "ulpd died"
wait_until "the main thread to wait in read() again" "$WAIT_TIMEOUT" task_in_read "$pid" "$pid"
expect_reply r "" "parkregs=ok"
ulpctl_ok apply "$COMPUTE" -p "$pid"
expect_reply r "call 5" "compute(5)=15"
ulpctl_ok revert compute_fix -p "$pid"
kill_pid "$ULPD_PID" TERM
untrack_pid "$ULPD_PID"
ULPD_PID=
stop_target r
for f in loading loaded load slots pre-patch begin poke:1 poke:2 started patched-entries poke:3 post-patch:1 \
	post-patch:2; do
	one_crash apply "$f"
done
for f in pre-unpatch pre-unpatch:2 begin poke:1 started unpatched-entries poke:2 post-unpatch:1 \
	post-unpatch:2 unload; do
	one_crash revert "$f"
done
step "ulpd --can-adopt: a new ulpd says whether it can take over (package upgrades)"
ulpd_with_fault ""
start_target u klp_target
upid=$(target_pid u)
ulpctl_ok apply "$DEMO" -p "$upid"
run_cmd_out=$("$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" --can-adopt 2>&1) ||
	fail "--can-adopt refused a process it can take over: $run_cmd_out"
assert_contains "$run_cmd_out" \
	"1 process(es) patched by the ulpd of $SOCK: this ulpd can take over every one" "--can-adopt"
pid_alive "$ULPD_PID" || fail "--can-adopt disturbed the running ulpd"
ulpctl_ok status -p "$upid"
assert_contains "$OUT" "patch 'klp_callbacks_demo': enabled=1" "status after --can-adopt"
ulpctl_ok revert klp_callbacks_demo -p "$upid"
stop_target u
kill_pid "$ULPD_PID" TERM
untrack_pid "$ULPD_PID"
ULPD_PID=

step "a state too large to save is said once, and the work goes on"
# A process another ulpd (another socket) patched, started first so that
# --can-adopt meets it before ours: its verdict must not leak into ours.
mkdir -p "$TMP/state" "$TMP/other-state"
"$ULPD_BIN" --socket "$TMP/other.sock" --state-dir "$TMP/other-state" \
	--runtime "$ULP_RUNTIME" </dev/null >"$TMP/ulpd-other.log" 2>&1 &
other_ulpd=$!
track_pid "$other_ulpd"
wait_until "the other ulpd to accept connections" "$WAIT_TIMEOUT" \
	timeout -k 1 5 "$ULPCTL_BIN" status --socket "$TMP/other.sock"
start_target o klp_target
opid=$(target_pid o)
timeout -k 5 "$CMD_TIMEOUT" "$ULPCTL_BIN" apply "$DEMO" -p "$opid" --socket "$TMP/other.sock" \
	</dev/null >/dev/null 2>&1 || fail "the other ulpd could not patch process $opid"
ULPD_SAVE_MAX=100 "$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" \
	--runtime "$ULP_RUNTIME" </dev/null >"$TMP/ulpd-small.log" 2>&1 &
ULPD_PID=$!
track_pid "$ULPD_PID"
wait_until "ulpd to accept connections on $SOCK" "$WAIT_TIMEOUT" ulpd_answers
start_target s klp_target
spid=$(target_pid s)
ulpctl_ok apply "$DEMO" -p "$spid"
expect_reply s "call main" "main=main:patched"
# nothing saved: a new ulpd could not take it over, and says so
if run_cmd_out=$("$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" --can-adopt 2>&1); then
	fail "--can-adopt accepted a process without a saved state: $run_cmd_out"
fi
assert_contains "$run_cmd_out" \
	"process $spid: cannot be taken over: process $spid has ulp's runtime but no saved state" \
	"--can-adopt"
assert_contains "$run_cmd_out" "not all can be taken over by this ulpd" "--can-adopt"
assert_not_contains "$run_cmd_out" "process $opid" "--can-adopt (another ulpd's process)"
assert_not_contains "$run_cmd_out" "managed by the ulpd of" "--can-adopt (another ulpd's verdict)"
ulpctl_ok revert klp_callbacks_demo -p "$spid"
expect_reply s "call main" "main=main:orig"
n=$(grep -c "cannot save ulpd's state in process $spid, a ulpd restarted after a crash would not adopt it: ulpd's state of process $spid is too large to save" \
	"$TMP/ulpd-small.log" || true)
[ "$n" -eq 1 ] || fail "the failed save was said $n times (once expected): $(cat "$TMP/ulpd-small.log")"
stop_target s
stop_target o
kill_pid "$other_ulpd" TERM
untrack_pid "$other_ulpd"
kill_pid "$ULPD_PID" TERM
untrack_pid "$ULPD_PID"
ULPD_PID=
ulpd_with_fault ""
test_done
