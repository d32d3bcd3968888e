#!/usr/bin/env bash
# persist: `ulpctl apply PATCH --exe PATH --persist` also patches processes
# of PATH started later, before their main() runs (target_basic's "first"
# answers what compute(5) returned as main()'s first call); the rule
# outlives a restart of ulpd, and a ulpd killed while it holds a new process
# at its entry leaves it to the next one; `revert --exe` ends it.
. "$(dirname "$0")/lib.sh"

need_file "$PATCHES/patch_compute.so"
need_file "$TARGETS/target_basic"
start_ulpd
mkdir -p "$TMP/bin"
cp "$TARGETS/target_basic" "$TMP/bin/server"
TARGETS_SAVED=$TARGETS

# start_server NAME: a process of $TMP/bin/server
start_server()
{
	TARGETS=$TMP/bin
	start_target "$1" server
	TARGETS=$TARGETS_SAVED
}

# ulpd_answers_pid PID: that ulpd serves the socket
ulpd_answers_pid()
{
	pid_alive "$1" || fail "ulpd $1 exited during start-up (see ulpd.log)"
	[ -S "$SOCK" ] && timeout -k 1 5 "$ULPCTL_BIN" status --socket "$SOCK" >/dev/null 2>&1
}

start_server a
step "apply --exe --persist: the running process now, the later ones before main()"
ulpctl_ok apply "$PATCHES/patch_compute.so" --exe "$TMP/bin/server" --persist
assert_contains "$OUT" "process $(target_pid a): patched" "apply --persist output"
expect_reply a "call 5" "compute(5)=15"
expect_reply a "first" "first=6"
start_server b
expect_reply b "first" "first=15"
expect_reply b "call 5" "compute(5)=15"
ulpctl_ok status --json
[ "$(jq --argjson p "$(target_pid b)" '[.processes[] | select(.pid == $p) | .patches[] |
	select(.name == "compute_fix")] | length' <<<"$OUT")" -eq 1 ] ||
	fail "status does not list b with the patch: $OUT"
ulpctl_ok log -p "$(target_pid b)"
assert_contains "$OUT" "ulp: 'compute_fix': patching complete" "log of b"

step "the rule outlives a restart of ulpd"
kill_pid "$ULPD_PID" TERM
ULPD_PID=
start_ulpd
start_server c
expect_reply c "first" "first=15"
[ -s "$TMP/state/persist.json" ] || fail "no persist.json in the state directory"

step "ulpd dies with a new process held at its entry: the next one patches and starts it"
kill_pid "$ULPD_PID" TERM
ULPD_PID=
mkdir -p "$TMP/state"
ULPD_FAULT=persist-spin "$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" \
	--runtime "$ULP_RUNTIME" </dev/null >>"$TMP/ulpd.log" 2>&1 &
faulty=$!
track_pid "$faulty"
wait_until "ulpd to accept connections on $SOCK" "$WAIT_TIMEOUT" ulpd_answers_pid "$faulty"
TARGETS=$TMP/bin
TARGET_NO_WAIT=1 start_target e server
TARGETS=$TARGETS_SAVED
wait_until "ulpd to die at its fault point" "$WAIT_TIMEOUT" pid_gone "$faulty"
untrack_pid "$faulty"
pid_alive "$(target_pid e)" || fail "the new process died with ulpd"
[ ! -s "$TMP/e.out" ] || fail "the new process ran its main() unpatched: $(cat "$TMP/e.out")"
start_ulpd
target_ready e
expect_reply e "first" "first=15"

step "revert --exe ends it"
ulpctl_ok revert compute_fix --exe "$TMP/bin/server"
for n in a b c e; do
	expect_reply "$n" "call 5" "compute(5)=6"
done
start_server d
expect_reply d "first" "first=6"

step "--persist needs apply --exe"
run_ulpctl apply "$PATCHES/patch_compute.so" -p "$(target_pid d)" --persist
assert_eq "$RC" 2 "exit status of --persist without --exe"
test_done
