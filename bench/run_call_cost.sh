#!/usr/bin/env bash
# run_call_cost.sh - ns per call of a patched function (entry jump + slot)
# against a direct call of the same code, measured in one target process.
#
#   bench/run_call_cost.sh [ITERS] [REPS]      (default 200000000 calls, 7 reps)
#
# Starts ulpd and ulp_bench_call_cost, measures cc_old() unpatched and
# cc_new_equiv() (a plain function with the replacement's body), applies
# patch_call_cost.so, checks cc_old() now returns the new result, measures
# again, and prints a markdown table.  Stand-ins for the parts of the
# redirection (a lone jmp rel32, a lone jmp *mem, both) are timed alongside
# (see call_cost_func.c).  The target is pinned to one CPU
# (the last) with taskset when there is more than one.  BENCH_CPU=N picks
# another CPU, BENCH_CPU=none disables pinning.
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

ITERS=${1:-200000000}
REPS=${2:-7}
CPU=${BENCH_CPU:-$(($(nproc) - 1))}
PIN=
if [ "$CPU" != none ] && [ "$(nproc)" -gt 1 ]; then
	PIN=$CPU
fi

need_file "$BENCH_BIN/ulp_bench_call_cost"
need_file "$BENCH_BIN/patch_call_cost.so"
start_ulpd
start_target cc ulp_bench_call_cost
PID=${TPID[cc]}
# Pinned once ready, before any measure: it has a single thread, and the
# runtime's worker injected later inherits its CPU.
if [ -n "$PIN" ]; then
	taskset -p -c "$PIN" "$PID" >/dev/null || fail "cannot pin pid $PID to CPU $PIN"
fi
log "target pid $PID${PIN:+, pinned to CPU $CPU}; $ITERS calls x $REPS reps per figure"

# Time for one measure: 18 variants x (REPS + 0.1) x ITERS calls at a few ns.
MEASURE_TIMEOUT=$((ITERS * (REPS + 1) * 18 * 20 / 1000000000 + 60))

send_cmd cc check
[ "$REPLY" = "check old=38 new=26" ] || fail "unexpected before patching: $REPLY"
send_cmd cc where
WHERE=$REPLY
send_cmd_within "$MEASURE_TIMEOUT" cc "measure $ITERS $REPS"
BEFORE=$REPLY
log "unpatched: $BEFORE"

request "{\"cmd\":\"apply\",\"pid\":$PID,\"patch\":\"$BENCH_BIN/patch_call_cost.so\"}"
log "apply: $REPLY"
send_cmd cc check
[ "$REPLY" = "check old=26 new=26" ] || fail "patch not in effect: $REPLY"
send_cmd cc resolve
RESOLVE=$REPLY
log "$RESOLVE"
send_cmd_within "$MEASURE_TIMEOUT" cc "measure $ITERS $REPS"
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

# row LABEL VARIANT [LINE]: ns per call of VARIANT in LINE (default: the
# patched measure), independent and chained, each with its extra over the
# direct call of the new code.
row()
{
	local label=$1 v=$2 line=${3:-$AFTER} ind chain
	ind=$(field "$v" "$line")
	chain=$(field "${v}_chain" "$line")
	printf '| %s | %s (%s) | %s (%s) |\n' "$label" \
		"$(f3 "$ind")" "$(diff3 "$ind" "$(field new "$line")")" \
		"$(f3 "$chain")" "$(diff3 "$chain" "$(field new_chain "$line")")"
}

if [[ $RESOLVE == *entry=direct* ]]; then
	PATH_DESC="entry \`jmp rel32\` → new function in the patch (direct: the patch is mapped within reach)"
	SLOT_ROW=
else
	PATH_DESC="entry \`jmp rel32\` → slot \`jmp *new_ptr\` → new function in the patch"
	SLOT_ROW=$(row "stand-in: \`jmp *mem\` → ulp's slot → new function in the patch" dyn2)$'\n'
fi

report <<TABLE
ns per call; in parentheses the extra over a direct call of the same code
(first row) in the same measurement.

| path of the call | independent calls (\`sum += f(i)\`) | dependency chain (\`x = f(x)\`) |
|---|---|---|
$(row "direct call of the new code (\`cc_new_equiv\`)" new)
$(row "**patched call**: \`cc_old\` → $PATH_DESC" old)
$(row "stand-in: \`jmp rel32\` → new code" jmp_direct)
$(row "stand-in: \`jmp *mem\` → new code" jmp_indirect)
$(row "stand-in: \`jmp rel32\` → \`jmp *mem\` → new code (ulp's shape, all in the executable)" jmp_both)
$(row "stand-in: \`jmp *mem\` → copy of the new code, page near the executable" copy_near)
$(row "stand-in: \`jmp *mem\` → copy of the new code, page far from it (mmap default)" copy_far)
$(row "stand-in: \`jmp *mem\` → new function in the patch" dyn1)
$SLOT_ROW$(row "before patching: \`cc_old\` (old code, plain call)" old "$BEFORE")

Medians of $REPS runs of $ITERS calls each (thread CPU time), all in one
process (pid $PID); \`$WHERE\`, \`$RESOLVE\`.
Raw, unpatched: \`$BEFORE\`
Raw, patched: \`$AFTER\`
TABLE
