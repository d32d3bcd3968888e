#!/usr/bin/env bash
# run_call_cost.sh - ns per call of a patched function (entry jump + slot)
# against a direct call of the same code, measured in one target process.
#
#   bench/run_call_cost.sh [ITERS] [REPS]      (default 200000000 calls, 7 reps)
#
# Starts ulpd and ulp_bench_call_cost, measures cc_old() unpatched and
# cc_new_equiv() (a plain function with the replacement's body), applies
# patch_call_cost.so, checks cc_old() now returns the new result, measures
# again, and prints a markdown table.  The target is pinned to one CPU
# (the last) with taskset when there is more than one.  BENCH_CPU=N picks
# another CPU, BENCH_CPU=none disables pinning.
source "$(dirname "$0")/lib.sh"

ITERS=${1:-200000000}
REPS=${2:-7}
CPU=${BENCH_CPU:-$(($(nproc) - 1))}
PIN=()
if [ "$CPU" != none ] && [ "$(nproc)" -gt 1 ]; then
	PIN=(taskset -c "$CPU")
fi

need_file "$BENCH_BIN/ulp_bench_call_cost"
need_file "$BENCH_BIN/patch_call_cost.so"
start_ulpd
start_target cc "${PIN[@]}" "$BENCH_BIN/ulp_bench_call_cost"
PID=${TPID[cc]}
log "target pid $PID${PIN:+, pinned to CPU $CPU}; $ITERS calls x $REPS reps per figure"

# Time for one measure: 4 variants x (REPS + 0.1) x ITERS calls at a few ns.
MEASURE_TIMEOUT=$((ITERS / 1000000 * (REPS + 1) * 4 * 20 / 1000 + 60))

send_cmd cc check
[ "$REPLY" = "check old=38 new=26" ] || fail "unexpected before patching: $REPLY"
send_cmd cc "measure $ITERS $REPS" "$MEASURE_TIMEOUT"
BEFORE=$REPLY
log "unpatched: $BEFORE"

request "{\"cmd\":\"apply\",\"pid\":$PID,\"patch\":\"$BENCH_BIN/patch_call_cost.so\"}"
log "apply: $REPLY"
send_cmd cc check
[ "$REPLY" = "check old=26 new=26" ] || fail "patch not in effect: $REPLY"
send_cmd cc "measure $ITERS $REPS" "$MEASURE_TIMEOUT"
AFTER=$REPLY
log "patched:   $AFTER"

ulpctl revert bench_call_cost -p "$PID"
send_cmd cc check
[ "$REPLY" = "check old=38 new=26" ] || fail "revert not in effect: $REPLY"
quit_target cc

# diff A B: A - B with 3 decimals.
diff3()
{
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f\n", a - b }'
}
f3()
{
	awk -v a="$1" 'BEGIN { printf "%.3f\n", a }'
}

B_NEW=$(field new "$AFTER") B_OLD=$(field old "$AFTER")
C_NEW=$(field new_chain "$AFTER") C_OLD=$(field old_chain "$AFTER")
U_OLD=$(field old "$BEFORE") U_OLDC=$(field old_chain "$BEFORE")
U_NEW=$(field new "$BEFORE") U_NEWC=$(field new_chain "$BEFORE")

cat <<TABLE
| loop shape | direct call of the new code | patched call (entry jump + slot) | extra per patched call | before patching: old / new-equivalent |
|---|---|---|---|---|
| independent calls (\`sum += f(i)\`) | $(f3 "$B_NEW") ns | $(f3 "$B_OLD") ns | $(diff3 "$B_OLD" "$B_NEW") ns | $(f3 "$U_OLD") / $(f3 "$U_NEW") ns |
| dependency chain (\`x = f(x)\`) | $(f3 "$C_NEW") ns | $(f3 "$C_OLD") ns | $(diff3 "$C_OLD" "$C_NEW") ns | $(f3 "$U_OLDC") / $(f3 "$U_NEWC") ns |

Medians of $REPS runs of $ITERS calls each, in one process (pid $PID).
Raw, unpatched: \`$BEFORE\`
Raw, patched: \`$AFTER\`
TABLE
