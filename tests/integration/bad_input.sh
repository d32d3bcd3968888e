#!/usr/bin/env bash
# bad_input: every refusal of docs/cli-contract.md: exit 1, the documented
# message on stderr, and the target (when alive) exactly as it was: same
# /proc/PID/maps, same code bytes, still answering.  ulpd survives all.
. "$(dirname "$0")/lib.sh"

start_ulpd
# No good patch is ever applied to t: its maps must never change.
start_target t target_basic
pid=$(target_pid t)
expect_reply t "call 5" "compute(5)=6"
snapshot_target t orig compute helper tiny

check_t_unchanged()
{
	expect_reply t "call 5" "compute(5)=6"
	snapshot_target t now compute helper tiny
	assert_unchanged t orig now
}

refuse()
{
	local patch=$1 sub=$2
	step "$(basename "$patch"): '$sub'"
	expect_fail apply "$patch" -p "$pid" "$sub"
	check_t_unchanged
}

refuse "$PATCHES/bad.so" "not an ELF file"
refuse "$PATCHES/patch_aarch64.so" "wrong architecture"
refuse "$PATCHES/libnotapatch.so" "not a ulp patch"
refuse "$PATCHES/patch_unknown.so" "symbol 'no_such_function' not found in object 'main'"
refuse "$PATCHES/patch_helper_ambiguous.so" "is ambiguous"
assert_contains "$ERR" "(sympos 1)" "ambiguity error"
assert_contains "$ERR" "(sympos 2)" "ambiguity error"
refuse "$PATCHES/patch_buildid_wrong.so" "build-id mismatch"
refuse "$PATCHES/patch_tiny.so" "too short"
assert_contains "$ERR" "tiny" "too-short error"

step "patch file that does not exist"
run_ulpctl apply "$TMP/no-such-patch.so" -p "$pid"
assert_eq "$RC" 1 "exit status"
check_t_unchanged

step "no such process"
# A PID that just existed and is gone (reaped) now.
true &
gone=$!
wait "$gone" || true
pid_alive "$gone" && fail "pid $gone still alive"
expect_fail apply "$PATCHES/patch_compute.so" -p "$gone" "no such process"

step "daemon not running"
saved_sock=$SOCK
SOCK=$TMP/nobody-listens.sock
expect_fail status "cannot connect to ulpd"
expect_fail apply "$PATCHES/patch_compute.so" -p "$pid" "cannot connect to ulpd"
SOCK=$saved_sock
check_t_unchanged

step "already traced"
start_target traced target_basic
tpid=$(target_pid traced)
expect_reply traced "call 5" "compute(5)=6"
need_file "$TARGETS/ulp_test_tracer"
"$TARGETS/ulp_test_tracer" "$tpid" >"$TMP/tracer.out" 2>"$TMP/tracer.err" &
tracer=$!
track_pid "$tracer"
tracer_ready()
{
	grep -qx attached "$TMP/tracer.out" && return 0
	pid_alive "$tracer" || fail "tracer exited: $(cat "$TMP/tracer.err")"
	return 1
}
wait_until "tracer to attach" "$WAIT_TIMEOUT" tracer_ready
expect_reply traced "call 5" "compute(5)=6"
snapshot_target traced orig compute
expect_fail apply "$PATCHES/patch_compute.so" -p "$tpid" "already traced"
expect_reply traced "call 5" "compute(5)=6"
snapshot_target traced now compute
assert_unchanged traced orig now
assert_contains "$(grep TracerPid "/proc/$tpid/status")" "$tracer" "the tracer still holds the target"
kill_pid "$tracer"
expect_reply traced "call 5" "compute(5)=6"
stop_target traced

step "statically linked target"
start_target static target_static
spid=$(target_pid static)
expect_reply static "call 5" "compute(5)=6"
snapshot_target static orig compute
expect_fail apply "$PATCHES/patch_compute.so" -p "$spid" "statically linked"
expect_reply static "call 5" "compute(5)=6"
snapshot_target static now compute
assert_unchanged static orig now
stop_target static

# A process that goes away while apply works on it: either apply finished
# first (exit 0) or it fails cleanly saying the process exited (or is not
# there any more).  Never a hang, never a dead ulpd.
racing_apply_result()
{
	if [ "$RC" -eq 0 ]; then
		log "apply finished before the exit"
		return
	fi
	assert_eq "$RC" 1 "exit status of the racing apply"
	[[ $ERR == *exited* || $ERR == *"no such process"* ]] ||
		fail "apply to an exiting process: unexpected error: $ERR"
	log "apply refused: $ERR"
}

step "process exits by itself during apply"
for i in 1 2 3 4 5 6 7 8; do
	delay=$(((RANDOM % 8) * 50))
	start_target dying target_basic --exit-after "$delay"
	dpid=$(target_pid dying)
	run_ulpctl apply "$PATCHES/patch_compute.so" -p "$dpid"
	racing_apply_result
	# Whatever happened, it must be free to exit: not left stopped.
	wait_until "target (exit after ${delay} ms) to exit" "$WAIT_TIMEOUT" pid_gone "$dpid"
	stop_target dying
	assert_ulpd_alive
done

step "process killed during apply"
for i in 1 2 3 4 5 6; do
	start_target dying target_basic --sleeper
	dpid=$(target_pid dying)
	timeout -k 5 "$CMD_TIMEOUT" "$ULPCTL_BIN" apply "$PATCHES/patch_compute.so" -p "$dpid" \
		--socket "$SOCK" >"$TMP/race.stdout" 2>"$TMP/race.stderr" </dev/null &
	racer=$!
	track_pid "$racer"
	sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
	kill -KILL "$dpid"
	set +e
	wait "$racer"
	RC=$?
	set -e
	untrack_pid "$racer"
	OUT=$(cat "$TMP/race.stdout")
	ERR=$(cat "$TMP/race.stderr")
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail "apply to a killed process hung"
	fi
	racing_apply_result
	stop_target dying
	assert_ulpd_alive
done

step "clients that connect and send nothing stall no one"
# 30 connections that never send a request; ulpd gives each 5 s to send
# one.  Read one after the other, they held every other client for 150 s.
/usr/bin/python3 - "$SOCK" "$TMP/silent.ready" <<'PY' &
import socket, sys, time
conns = []
for _ in range(30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    conns.append(s)
open(sys.argv[2], "w").close()
time.sleep(120)
PY
SILENT=$!
track_pid "$SILENT"
wait_until "the silent clients to connect" "$WAIT_TIMEOUT" test -e "$TMP/silent.ready"
# answered while the 30 wait for their time to run out (bounded well below 150 s)
CMD_TIMEOUT=40 ulpctl_ok status
assert_contains "$OUT" "no patched processes" "status while silent clients are connected"
kill_pid "$SILENT" KILL

step "ulpd still works after all that"
check_t_unchanged
start_target good target_basic
ulpctl_ok apply "$PATCHES/patch_compute.so" -p "$(target_pid good)"
expect_reply good "call 5" "compute(5)=15"
ulpctl_ok revert compute_fix -p "$(target_pid good)"
expect_reply good "call 5" "compute(5)=6"

test_done
