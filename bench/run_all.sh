#!/usr/bin/env bash
# run_all.sh - run every benchmark and print the results as markdown:
# the machine, the call cost (run_call_cost.sh), the stop times of an
# apply (run_apply_stop.sh) and the convergence of a transition
# (run_converge.sh, with its defaults).
#
#   bench/run_all.sh [-k K] [-t "1 64 512"] [-m "busy duty"] [-i ITERS] [-r REPS]
#
# Build first: cmake -S . -B build && cmake --build build
# ULP_BUILD selects another build tree.  Progress goes to stderr, the
# markdown to stdout: bench/run_all.sh >results.md
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)

K=10 THREADS="1 64 512" MODES="busy duty" ITERS=200000000 REPS=7
while getopts "k:t:m:i:r:" opt; do
	case $opt in
	k) K=$OPTARG ;;
	t) THREADS=$OPTARG ;;
	m) MODES=$OPTARG ;;
	i) ITERS=$OPTARG ;;
	r) REPS=$OPTARG ;;
	*)
		echo "usage: $0 [-k K] [-t THREADS] [-m MODES] [-i ITERS] [-r REPS]" >&2
		exit 2
		;;
	esac
done

mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
commit=$(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo unknown)

cat <<EOF
# ulp benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')

| machine | |
|---|---|
| CPUs (\`nproc\`) | $(nproc) |
| model (\`lscpu\`) | $model |
| kernel (\`uname -r\`) | $(uname -r) |
| memory | $mem |
| load average before the run | $(cut -d' ' -f1-3 /proc/loadavg) |
| source | $commit |

## Cost of a patched call

EOF
"$HERE/run_call_cost.sh" "$ITERS" "$REPS"

cat <<EOF

## Stops during an apply

EOF
"$HERE/run_apply_stop.sh" -k "$K" -t "$THREADS" -m "$MODES"

cat <<EOF

## Convergence of a transition

EOF
"$HERE/run_converge.sh"
echo
echo "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
