#!/usr/bin/env bash
# threads_during_attach: a process that creates and joins short-lived
# threads all the time (threads appear and vanish while ulp attaches and
# while the transition runs) is patched and reverted 20 times; it stays
# alive, keeps creating threads, and every thread saw a right result.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"
start_ulpd
start_target t target_basic --thread-churn 3 --threads 1
pid=$(target_pid t)
expect_reply t "call 5" "compute(5)=6"

churn_count()
{
	send_cmd t churn
	[[ $REPLY =~ ^churn=([0-9]+)$ ]] || fail "bad churn reply '$REPLY'"
	CHURN=${BASH_REMATCH[1]}
}

for round in $(seq 1 20); do
	log "round $round"
	ulpctl_ok apply "$PATCH" -p "$pid"
	expect_reply t "call 5" "compute(5)=15"
	ulpctl_ok revert compute_fix -p "$pid"
	expect_reply t "call 5" "compute(5)=6"
done

step "still creating threads, right results only"
churn_count
before=$CHURN
churn_grew()
{
	churn_count
	[ "$CHURN" -gt "$before" ]
}
wait_until "threads to keep being created" "$WAIT_TIMEOUT" churn_grew
send_cmd t values
[[ $REPLY =~ ^values=(6|15|6,15)$ ]] || fail "threads saw unexpected results: $REPLY"
log "$REPLY, $CHURN threads created"

test_done
