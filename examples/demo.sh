#!/usr/bin/env bash
# demo.sh [BUILD_DIR] - live-patch a running program with ulp, step by step.
#
# Starts its own ulpd on a private socket, starts examples/demo_server
# (which prints "price(10) = 100" every half second: a discount is
# missing), applies examples/patch/fix_price.c to it while it runs (the
# output turns to "price(10) = 90" without a restart), shows
# `ulpctl status`, reverts the patch (back to 100), shows the event log
# and cleans up.
# BUILD_DIR defaults to ./build.  Needs root (or ptrace rights on the
# server, which it starts itself).
set -euo pipefail
export LC_ALL=C

build=$(cd "${1:-build}" && pwd) || {
	echo "demo: no build directory '${1:-build}' (cmake -S . -B build && cmake --build build)" >&2
	exit 1
}
ulpd_bin=$build/daemon/ulpd
ulpctl_bin=$build/cli/ulpctl
runtime=$build/runtime/libulp-rt.so
server_bin=$build/examples/demo_server
patch=$build/examples/fix_price.so
for f in "$ulpd_bin" "$ulpctl_bin" "$runtime" "$server_bin" "$patch"; do
	[ -e "$f" ] || {
		echo "demo: missing $f: build the tree first" >&2
		exit 1
	}
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ulp-demo.XXXXXX")
sock=$tmp/ulpd.sock
ulpd_pid=
server_pid=
shown=0

bold=
plain=
if [ -t 1 ]; then
	bold=$(printf '\033[1m')
	plain=$(printf '\033[0m')
fi

say()
{
	printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"
}

run()
{
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}

cleanup()
{
	local rc=$?
	set +e
	if [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	if [ -n "$ulpd_pid" ]; then
		kill -TERM "$ulpd_pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$ulpd_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$ulpd_pid" 2>/dev/null
		wait "$ulpd_pid" 2>/dev/null
	fi
	if [ "$rc" -ne 0 ] && [ -s "$tmp/ulpd.log" ]; then
		echo "--- ulpd's log:" >&2
		tail -n 30 "$tmp/ulpd.log" >&2
	fi
	rm -rf "$tmp"
	if [ "$rc" -eq 0 ]; then
		say "Done: the server ran the fixed code and went back, without a restart."
	else
		echo "demo: FAILED" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulpctl()
{
	timeout -k 5 60 "$ulpctl_bin" "$@" --socket "$sock"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for()
{
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	echo "demo: timed out after ${secs}s waiting for $what" >&2
	return 1
}

ulpd_up()
{
	kill -0 "$ulpd_pid" 2>/dev/null || {
		echo "demo: ulpd exited:" >&2
		cat "$tmp/ulpd.log" >&2
		exit 1
	}
	ulpctl status >/dev/null 2>&1
}

# show_output: the server's lines printed since the last call.
show_output()
{
	local total
	total=$(wc -l <"$tmp/server.out")
	sed -n "$((shown + 1)),${total}p" "$tmp/server.out" | sed 's/^/    server | /'
	shown=$total
}

server_lines()
{
	[ "$(wc -l <"$tmp/server.out")" -ge "$1" ]
}

# last_price_is N: the server's latest line quotes N.
last_price_is()
{
	tail -n 1 "$tmp/server.out" | grep -q "= $1\$"
}

say "Starting ulpd on a private socket ($sock)"
mkdir -p "$tmp/state"
"$ulpd_bin" --socket "$sock" --state-dir "$tmp/state" --runtime "$runtime" \
	</dev/null >"$tmp/ulpd.log" 2>&1 &
ulpd_pid=$!
wait_for 20 "ulpd to listen" ulpd_up
echo "    ulpd is running, pid $ulpd_pid"

say "Starting the server: it quotes price(10) every half second (should be 90, prints 100)"
"$server_bin" >"$tmp/server.out" 2>&1 &
server_pid=$!
wait_for 20 "the server's first quotes" server_lines 4
show_output

say "Live-patching the running server (pid $server_pid) with fix_price.so"
run ulpctl apply "$patch" -p "$server_pid"
wait_for 20 "the server to quote 90" last_price_is 90
sleep 1
show_output

say "What ulp reports"
run ulpctl status -p "$server_pid"

say "Reverting the patch"
run ulpctl revert fix_price -p "$server_pid"
wait_for 20 "the server to quote 100 again" last_price_is 100
sleep 1
show_output

say "The process's event log (ulp's lines and the patch's own ulp_log() lines)"
run ulpctl log -p "$server_pid"
kill -0 "$server_pid" || {
	echo "demo: the server died" >&2
	exit 1
}
