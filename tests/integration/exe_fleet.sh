#!/usr/bin/env bash
# exe_fleet: `ulpctl apply/revert --exe PATH` patches every running process
# of that executable (the same file, or the same build-id once the file was
# replaced), in parallel, and reports each: patched / reverted / already /
# skipped (another build) / failed; --json; processes of other programs are
# left alone.  ulpd then knows every process it patched (status), and an
# object such a process loads later is patched as it loads.
. "$(dirname "$0")/lib.sh"

need_file "$PATCHES/patch_compute.so"
need_file "$TARGETS/target_basic"
need_file "$TARGETS/klp_target"
need_file "$PATCHES/patch_klp_livepatch.so"
need_file "$PATCHES/patch_gate.so"
# ulpd's workers wait for this file before they start (a test hook); it
# is removed only to look at ulpd while an --exe request runs
export ULPD_FLEET_HOLD=$TMP/go
touch "$ULPD_FLEET_HOLD"
start_ulpd
mkdir -p "$TMP/bin"
cp "$TARGETS/target_basic" "$TMP/bin/server"
TARGETS_SAVED=$TARGETS
TARGETS=$TMP/bin
for n in a b c; do
	start_target "$n" server
done
TARGETS=$TARGETS_SAVED
start_target other klp_target

# fleet_result JSON PID: that process's result in a --json reply.
fleet_result()
{
	jq -r --argjson p "$2" '.processes[] | select(.pid == $p) | .result' <<<"$1"
}

# fleet_finished PID LABEL RC [RESULT]: the background --exe request PID
# (its output in $TMP/LABEL.out) exits RC, with RESULT for process d.
fleet_finished()
{
	BG_PID=$1 BG_OUT=$TMP/$2
	bg_ulpctl_finish
	assert_eq "$BG_RC" "$3" "exit status of $2"
	[ -z "$4" ] ||
		assert_eq "$(fleet_result "$(cat "$TMP/$2.out")" "$(target_pid d)")" "$4" "result of d in $2"
}

# jq_eq FILTER VALUE: jq -r FILTER of $OUT is VALUE.
jq_eq()
{
	local got
	got=$(jq -r "$1" <<<"$OUT")
	[ "$got" = "$2" ] || fail "$1 is '$got', expected '$2' in: $OUT"
}

step "apply --exe: every process of the program, no other"
ulpctl_ok apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server"
for n in a b c; do
	assert_contains "$OUT" "process $(target_pid "$n"): patched" "apply --exe output"
	expect_reply "$n" "call 5" "compute(5)=15"
done
assert_not_contains "$OUT" "process $(target_pid other):" "apply --exe output"
assert_contains "$OUT" "applied patch 'compute_fix' to 3 of 3 process(es) of $TMP/bin/server" \
	"apply --exe summary"
ulpctl_ok status --json
for n in a b c; do
	[ "$(jq --argjson p "$(target_pid "$n")" '[.processes[] | select(.pid == $p)] | length' \
		<<<"$OUT")" -eq 1 ] || fail "status does not list ${n}: $OUT"
done

step "again: already applied everywhere, exit 0"
ulpctl_ok apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server" --json
for n in a b c; do
	assert_eq "$(fleet_result "$OUT" "$(target_pid "$n")")" already "result of $n"
done

step "the file replaced by another build: its old processes are skipped"
ulpctl_ok revert compute_fix --exe "$TMP/bin/server"
# the same program with another build-id (the note's last byte changed)
cp "$TMP/bin/server" "$TMP/server.new"
python3 - "$TMP/server.new" "$(readelf -n "$TMP/server.new" | awk '/Build ID/ { print $3 }')" <<'PY'
import sys
path, bid = sys.argv[1], bytes.fromhex(sys.argv[2])
data = bytearray(open(path, "rb").read())
at = data.find(bid)
assert at > 0
data[at + len(bid) - 1] ^= 0xff
open(path, "wb").write(data)
PY
chmod +x "$TMP/server.new"
mv "$TMP/server.new" "$TMP/bin/server"
TARGETS=$TMP/bin
start_target d server
TARGETS=$TARGETS_SAVED
ulpctl_ok apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server" --json
assert_eq "$(fleet_result "$OUT" "$(target_pid d)")" patched "result of d (the new build)"
for n in a b c; do
	assert_eq "$(fleet_result "$OUT" "$(target_pid "$n")")" skipped "result of $n (old build)"
	expect_reply "$n" "call 5" "compute(5)=6"
done
expect_reply d "call 5" "compute(5)=15"
jq -e '.processes[] | select(.result == "skipped") | .error | contains("another build")' \
	<<<"$OUT" >/dev/null || fail "skipped without the reason: $OUT"

step "revert --exe"
ulpctl_ok revert compute_fix --exe "$TMP/bin/server"
assert_contains "$OUT" "process $(target_pid d): reverted" "revert --exe output"
expect_reply d "call 5" "compute(5)=6"
step "while an --exe request runs, ulpd serves the rest; --exe requests wait their turn"
# a client already waits on a transition in another program, parked in gate()
start_target g target_basic
expect_reply g "blockgate 7" "blockgate=started"
# gate_parked: a thread of g other than the main one sits in read()
gate_parked()
{
	local task
	for task in /proc/"$(target_pid g)"/task/*; do
		[ "${task##*/}" != "$(target_pid g)" ] || continue
		[[ $(cat "$task/syscall" 2>/dev/null) == "0 "* ]] && return 0
	done
	return 1
}
wait_until "g's gate thread to block in read()" "$WAIT_TIMEOUT" gate_parked
bg_ulpctl_start gatewait apply "$PATCHES/patch_gate.so" -p "$(target_pid g)" --timeout 120
GATEWAIT=$BG_PID
g_switched()
{
	send_cmd g "value 5"
	[ "$REPLY" = "value_fn(5)=1005" ]
}
wait_until "g's main thread to switch" "$WAIT_TIMEOUT" g_switched
rm "$ULPD_FLEET_HOLD"
bg_ulpctl_start fleet1 apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server" --json
FLEET1=$BG_PID
# first_runs: status shows the first --exe request running (its workers held)
first_runs()
{
	run_ulpctl status --json
	[ "$RC" -eq 0 ] && [ "$(jq -r '.exe_requests[0].state' <<<"$OUT")" = running ]
}
wait_until "the --exe request to run" "$WAIT_TIMEOUT" first_runs
# a request naming d is refused, saying why (the --exe request has it)
expect_fail apply "$PATCHES/patch_compute.so" -p "$(target_pid d)" \
	"process $(target_pid d) is being worked on by a running --exe request for $TMP/bin/server"
expect_fail revert compute_fix -p "$(target_pid d)" "try again once it has answered"
ulpctl_ok status --json
jq_eq '.exe_requests | length' 1
jq_eq '.exe_requests[0].state' running
jq_eq '.exe_requests[0].action' apply
jq_eq '.exe_requests[0].total' 1
jq_eq '.exe_requests[0].done' 0
# another process is patched and reverted meanwhile
ulpctl_ok apply "$PATCHES/patch_klp_livepatch.so" -p "$(target_pid other)"
expect_reply other "call main" "main=main:livepatched"
ulpctl_ok revert klp_livepatch -p "$(target_pid other)"
expect_reply other "call main" "main=main:orig"
# the waiting client's transition completes: its reply ends at once (no
# worker holds its connection open)
expect_reply g release release=ok
wait_until "the client waiting on g's transition to be answered" "$WAIT_TIMEOUT" pid_gone "$GATEWAIT"
BG_PID=$GATEWAIT BG_OUT=$TMP/gatewait
bg_ulpctl_finish
assert_eq "$BG_RC" 0 "exit status of the apply to g"
assert_contains "$(cat "$TMP/gatewait.out")" "applied patch 'gate_fix' to process $(target_pid g)" "apply to g"
# a second --exe request waits for the first, then runs
bg_ulpctl_start fleet2 revert compute_fix --exe "$TMP/bin/server" --json
FLEET2=$BG_PID
second_waits()
{
	run_ulpctl status --json
	[ "$RC" -eq 0 ] && [ "$(jq -r '.exe_requests[1].state' <<<"$OUT")" = waiting ]
}
wait_until "the second --exe request to wait" "$WAIT_TIMEOUT" second_waits
ulpctl_ok status
assert_contains "$OUT" "--exe request: apply patch 'compute_fix' to $TMP/bin/server: running, 0 of 1 process(es) done" "status"
assert_contains "$OUT" "--exe request: revert patch 'compute_fix' in $TMP/bin/server: waiting" "status"
pid_alive "$FLEET1" || fail "the held --exe request answered: $(cat "$TMP/fleet1.out" "$TMP/fleet1.err")"
touch "$ULPD_FLEET_HOLD"
fleet_finished "$FLEET1" fleet1 0 patched
fleet_finished "$FLEET2" fleet2 0 reverted
expect_reply d "call 5" "compute(5)=6"
ulpctl_ok status --json
jq_eq '.exe_requests | length' 0

ulpctl_ok revert gate_fix -p "$(target_pid g)"
stop_target g

step "an object loaded after apply --exe is patched as it loads"
# ulpd took the processes over from its workers: the loader hook talks to it
cp "$TARGETS/klp_target" "$TMP/bin/klp"
TARGETS=$TMP/bin
start_target k klp
TARGETS=$TARGETS_SAVED
expect_reply k "call mod" "mod=not loaded"
ulpctl_ok apply "$PATCHES/patch_klp_livepatch.so" --exe "$TMP/bin/klp"
assert_contains "$OUT" "process $(target_pid k): patched" "apply --exe output"
expect_reply k "call main" "main=main:livepatched"
expect_reply k "load mod" "load mod=ok"
expect_reply k "call mod" "mod=mod:livepatched"
ulpctl_ok status -p "$(target_pid k)"
assert_contains "$OUT" "object 'libklp_mod.so': patched=1" "status after the load"
ulpctl_ok revert klp_livepatch --exe "$TMP/bin/klp"
expect_reply k "call mod" "mod=mod:orig"
expect_reply k "call main" "main=main:orig"
stop_target k

run_ulpctl apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server" -p "$(target_pid d)"
assert_eq "$RC" 2 "exit status of apply with both -p and --exe (bad usage)"
assert_contains "$ERR" "exclude each other" "apply with both -p and --exe"

step "SIGTERM: the running --exe request is finished and answered, a waiting one refused"
rm "$ULPD_FLEET_HOLD"
bg_ulpctl_start fleet3 apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server" --json
FLEET3=$BG_PID
wait_until "the --exe request to run" "$WAIT_TIMEOUT" first_runs
bg_ulpctl_start fleet4 revert compute_fix --exe "$TMP/bin/server" --json
FLEET4=$BG_PID
wait_until "the second --exe request to wait" "$WAIT_TIMEOUT" second_waits
kill -TERM "$ULPD_PID"
touch "$ULPD_FLEET_HOLD"
fleet_finished "$FLEET3" fleet3 0 patched
fleet_finished "$FLEET4" fleet4 1 ""
assert_contains "$(cat "$TMP/fleet4.err")" "ulpd stopped before this --exe request started; nothing was changed" "the waiting request's error"
wait_until "ulpd to exit" "$WAIT_TIMEOUT" pid_gone "$ULPD_PID"
set +e
wait "$ULPD_PID"
rc=$?
set -e
assert_eq "$rc" 0 "ulpd's exit status after SIGTERM"
untrack_pid "$ULPD_PID"
ULPD_PID=
expect_reply d "call 5" "compute(5)=15"
# what the finished request did is the next ulpd's
start_ulpd
ulpctl_ok status -p "$(target_pid d)"
assert_contains "$OUT" "patch 'compute_fix': enabled=1" "status of d after the restart"
test_done
