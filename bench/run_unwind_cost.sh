#!/usr/bin/env bash
# run_unwind_cost.sh - ns per frame of a remote unwind of one stopped
# thread: ulp's unwinder (warm, invalidated, new) against libunwind-ptrace
# as shipped (_UPT accessors, UNW_CACHE_NONE) and with UNW_CACHE_GLOBAL.
#
#   bench/run_unwind_cost.sh [ITERS] [DEPTH...]   (default 10000; 10 50)
#
# Runs ulp_bench_unwind_cost (bench/unwind_cost.c; it forks and stops its
# own targets, needs ptrace rights: run as root or with ptrace_scope 0)
# and prints its markdown table with the machine it ran on.  The run is
# pinned to one CPU (the last) with taskset when there is more than one;
# BENCH_CPU=N picks another, BENCH_CPU=none disables pinning.  The whole
# run is bounded by `timeout` (BENCH_CMD_TIMEOUT, default 600 s).
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ULP_BUILD=${ULP_BUILD:-$BENCH_DIR/../build}
BIN=$ULP_BUILD/bench/ulp_bench_unwind_cost
ITERS=${1:-10000}
shift || true
CPU=${BENCH_CPU:-$(($(nproc) - 1))}
PIN=()
if [ "$CPU" != none ] && [ "$(nproc)" -gt 1 ]; then
	PIN=(taskset -c "$CPU")
fi

if [ ! -x "$BIN" ]; then
	echo "run_unwind_cost: $BIN missing: build first (ULP_BUILD=$ULP_BUILD)" >&2
	exit 1
fi

MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
echo "Machine: $(nproc) CPUs, ${MODEL:-unknown CPU}, Linux $(uname -r)${PIN:+, pinned to CPU $CPU}."
echo "Command: \`bench/run_unwind_cost.sh $ITERS${*:+ $*}\`"
echo
timeout "${BENCH_CMD_TIMEOUT:-600}" "${PIN[@]}" "$BIN" "$ITERS" "$@"
