#!/usr/bin/env bash
# run_fleet.sh - patch N running processes of one program at once with
# `ulpctl apply --exe` (then revert them the same way): wall time of each
# command, and the peak RSS of ulpd (VmHWM) and of its forked workers.
#
#   bench/run_fleet.sh [N]        (default 1000)
#
# Starts N copies of ulp_bench_fleet (each sleeps in pause() once ready),
# ulpd, times apply --exe and revert --exe of patch_fleet.so, checks every
# process is reported patched / reverted, and prints a markdown table.
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

N=${1:-1000}
PROG=$BENCH_BIN/ulp_bench_fleet
PATCH=$BENCH_BIN/patch_fleet.so
need_file "$PROG"
need_file "$PATCH"

pids=()
log "starting $N copies of ulp_bench_fleet"
for ((i = 0; i < N; i++)); do
	"$PROG" </dev/null >"$TMP/fleet.$i.out" 2>&1 &
	pids+=($!)
	track_pid "$!"
done
for ((i = 0; i < N; i++)); do
	wait_until "copy $i to be ready" "$WAIT_TIMEOUT" grep -q '^ready' "$TMP/fleet.$i.out"
done
start_ulpd

# fleet VERB ARGS...: time one ulpctl --exe call; SECONDS_TAKEN, COUNT of "VERB" lines
fleet()
{
	local verb=$1 t0 t1
	shift
	t0=$(now_us)
	run_ulpctl "$@" --exe "$PROG"
	t1=$(now_us)
	[ "$RC" -eq 0 ] || fail "$* --exe: $ERR; $(grep -v ": $verb\$" <<<"$OUT" | head -5)"
	SECONDS_TAKEN=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')
	COUNT=$(grep -c ": $verb\$" <<<"$OUT" || true)
	[ "$COUNT" -eq "$N" ] || fail "$verb in $COUNT of $N processes: $(grep -v ": $verb\$" <<<"$OUT" | head -5)"
}

# cpu_ms PID...: user + system CPU of the processes, their reaped children
# included (ulpd's forked workers), in ms
cpu_ms()
{
	local hz
	hz=$(getconf CLK_TCK)
	for p in "$@"; do
		# the fields after the ")" of comm: utime is the 12th, cstime the 15th
		sed 's/.*) //' "/proc/$p/stat" 2>/dev/null
	done | awk -v hz="$hz" '{ t += $12 + $13 + $14 + $15 } END { printf "%d", t * 1000 / hz }'
}

# busy_ms: CPU time the whole machine spent outside idle, in ms. The
# targets' share is taken as the rest of it: each target uses far less
# than the 10 ms tick /proc/PID/stat counts in, so their own figures
# would round to nothing.
busy_ms()
{
	awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%d", ($2 + $3 + $4 + $7 + $8) * 1000 / hz }' /proc/stat
}

# cpu_split VERB: run "fleet VERB ..." and record the CPU ulpd (with its
# workers) and everything else (the targets, ulpctl) spent, per process,
# in ULPD_MS and TARGET_MS
cpu_split()
{
	local u0 t0 u1 t1
	u0=$(cpu_ms "$ULPD_PID")
	t0=$(busy_ms)
	fleet "$@"
	u1=$(cpu_ms "$ULPD_PID")
	t1=$(busy_ms)
	t0=$((t0 + u1 - u0))
	ULPD_MS=$(awk -v d=$((u1 - u0)) -v n="$N" 'BEGIN { printf "%.1f", d / n }')
	TARGET_MS=$(awk -v d=$((t1 - t0)) -v n="$N" 'BEGIN { printf "%.1f", d / n }')
}

rss_kb()
{
	awk '/^VmHWM:/ { print $2 }' "/proc/$ULPD_PID/status"
}

cpu_split patched apply "$PATCH"
apply_s=$SECONDS_TAKEN
apply_cpu="$ULPD_MS + $TARGET_MS"
apply_rss=$(rss_kb)
# what ulpd costs while it only watches the N patched processes
u0=$(cpu_ms "$ULPD_PID")
sleep 10
idle_ms=$(awk -v d=$(($(cpu_ms "$ULPD_PID") - u0)) 'BEGIN { printf "%.0f", d / 10 }')
cpu_split reverted revert fleet_fix
revert_s=$SECONDS_TAKEN
revert_cpu="$ULPD_MS + $TARGET_MS"
revert_rss=$(rss_kb)
stop_ulpd
for p in "${pids[@]}"; do
	kill_pid "$p" KILL
	untrack_pid "$p"
done

report <<TABLE
| processes | apply --exe | revert --exe | CPU ms per process, apply: ulpd + the rest | revert | ulpd CPU while idle, ms/s | ulpd peak RSS after apply | after revert | CPUs |
|---|---|---|---|---|---|---|---|---|
| $N | $apply_s s | $revert_s s | $apply_cpu | $revert_cpu | $idle_ms | $((apply_rss / 1024)) MiB | $((revert_rss / 1024)) MiB | $(nproc) |
TABLE
