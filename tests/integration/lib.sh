# shellcheck shell=bash disable=SC2034 # variables here are for the tests
# lib.sh - sourced by every integration test (tests/integration/*.sh).
#
# Gives each test its own temp dir and ulpd, target programs driven through
# a FIFO, ulpctl wrappers and assertions.  Every wait has a timeout, every
# process started here is tracked by PID and killed by PID on exit.
#
# Environment: ULP_BUILD (the build tree, required), ULP_TARGETS,
# ULP_PATCHES (default: under ULP_BUILD), ULP_WAIT_TIMEOUT (seconds for a
# target reply, default 20), ULP_CMD_TIMEOUT (seconds for one ulpctl call,
# default 60), ULP_KEEP_TMP=1 (keep the temp dir).

set -euo pipefail
export LC_ALL=C

: "${ULP_BUILD:?ULP_BUILD must point at the build tree}"
ULPD_BIN=$ULP_BUILD/daemon/ulpd
ULPCTL_BIN=$ULP_BUILD/cli/ulpctl
ULP_RUNTIME=$ULP_BUILD/runtime/libulp-rt.so
TARGETS=${ULP_TARGETS:-$ULP_BUILD/tests/targets}
PATCHES=${ULP_PATCHES:-$ULP_BUILD/tests/patches}
WAIT_TIMEOUT=${ULP_WAIT_TIMEOUT:-20}
CMD_TIMEOUT=${ULP_CMD_TIMEOUT:-60}

TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ulp-$TEST_NAME.XXXXXX")
SOCK=$TMP/ulpd.sock
ULPD_PID=
declare -a OTHER_PIDS=() # helpers started with track_pid
declare -a FAIL_HOOKS=() # commands run on failure, before cleanup
declare -A TPID=() TFD=() TOUT=() TLINES=()

# Results of the last run_ulpctl / send_cmd.
RC=0
OUT=
JSON_FLAT=
JREF=
ERR=
REPLY=

log()
{
	printf '[%s] %s\n' "$TEST_NAME" "$*"
}

step()
{
	printf '\n[%s] == %s\n' "$TEST_NAME" "$*"
}

# on_failure COMMAND...: run COMMAND (for more diagnostics) if the test fails.
on_failure()
{
	FAIL_HOOKS+=("$*")
}

dump_diagnostics()
{
	local f hook
	for hook in "${FAIL_HOOKS[@]}"; do
		eval "$hook"
	done
	printf '\n[%s] ---- diagnostics (%s)\n' "$TEST_NAME" "$TMP"
	if [ -n "$ULPD_PID" ] && ! pid_alive "$ULPD_PID"; then
		printf 'ulpd (pid %s) is not running any more: it crashed or exited\n' "$ULPD_PID"
	fi
	for f in "$TMP"/ulpd.log "$TMP"/*.out "$TMP"/*.err "$TMP"/ulpctl.last; do
		[ -s "$f" ] || continue
		printf -- '--- %s (last 40 lines)\n' "${f##*/}"
		tail -n 40 "$f"
	done
}

fail()
{
	printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# State letter of a process (R, S, t, Z, ...), empty if gone.
proc_state()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	printf '%s' "${stat%% *}"
}

pid_alive()
{
	local s
	s=$(proc_state "$1")
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

pid_gone()
{
	! pid_alive "$1"
}

now_us()
{
	printf '%s' "${EPOCHREALTIME/./}"
}

# wait_until DESC SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_until()
{
	local desc=$1 secs=$2
	shift 2
	local deadline=$(($(now_us) + secs * 1000000))
	until "$@"; do
		if (($(now_us) > deadline)); then
			fail "timed out after ${secs}s waiting for $desc"
		fi
		sleep 0.02
	done
}

# untrack_pid PID: forget a helper (already reaped: never kill it again).
untrack_pid()
{
	local p keep=()
	for p in "${OTHER_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	OTHER_PIDS=("${keep[@]}")
}

# kill_pid PID [SIGNAL]: kill one process we started, by PID, and reap it.
# Other signals than KILL get 10 s to work before KILL follows.
kill_pid()
{
	local pid=$1 sig=${2:-KILL} i
	untrack_pid "$pid"
	if [ "$sig" != KILL ]; then
		kill -"$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < 500; i++)); do
			pid_alive "$pid" || break
			sleep 0.02
		done
	fi
	kill -KILL "$pid" 2>/dev/null || true
	{ wait "$pid"; } 2>/dev/null || true
}

# stop_ulpd_clean: stop ulpd with SIGTERM as systemd would; it must exit 0
# within 10 s, with no sanitizer report in its log (leaks show only at exit).
stop_ulpd_clean()
{
	local i st
	kill -TERM "$ULPD_PID" 2>/dev/null
	for ((i = 0; i < 500; i++)); do
		pid_alive "$ULPD_PID" || break
		sleep 0.02
	done
	if pid_alive "$ULPD_PID"; then
		log "FAIL: ulpd (pid $ULPD_PID) did not exit within 10 s of SIGTERM"
		return 1
	fi
	wait "$ULPD_PID" 2>/dev/null
	st=$?
	untrack_pid "$ULPD_PID"
	ULPD_PID=
	if [ "$st" -ne 0 ] || grep -qE 'Sanitizer|runtime error:' "$TMP/ulpd.log"; then
		log "FAIL: ulpd exited $st after SIGTERM; its log:"
		tail -n 60 "$TMP/ulpd.log" >&2
		return 1
	fi
	return 0
}

cleanup()
{
	local rc=$? name fd pid
	set +e
	trap - EXIT
	# first: a test may track ulpd among its helpers, which are killed below
	[ -n "$ULPD_PID" ] && [ "$rc" -eq 0 ] && ! stop_ulpd_clean && rc=1
	[ "$rc" -ne 0 ] && dump_diagnostics
	for name in "${!TPID[@]}"; do
		kill_pid "${TPID[$name]}" KILL
		fd=${TFD[$name]}
		exec {fd}>&-
	done
	for pid in "${OTHER_PIDS[@]}"; do
		kill_pid "$pid" KILL
	done
	OTHER_PIDS=()
	[ -n "$ULPD_PID" ] && kill_pid "$ULPD_PID" TERM
	if [ "${ULP_KEEP_TMP:-0}" = 1 ]; then
		log "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	if [ "$rc" -eq 0 ]; then
		log PASS
	else
		log "FAILED (exit $rc)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

track_pid()
{
	OTHER_PIDS+=("$1")
}

need_file()
{
	[ -e "$1" ] || fail "missing $1 (not built?)"
}

# ---------------------------------------------------------------- ulpd

ulpd_answers()
{
	pid_alive "$ULPD_PID" || fail "ulpd exited during start-up (see ulpd.log)"
	[ -S "$SOCK" ] && timeout -k 1 5 "$ULPCTL_BIN" status --socket "$SOCK" >/dev/null 2>&1
}

start_ulpd()
{
	need_file "$ULPD_BIN"
	need_file "$ULPCTL_BIN"
	need_file "$ULP_RUNTIME"
	mkdir -p "$TMP/state"
	"$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" --runtime "$ULP_RUNTIME" \
		</dev/null >"$TMP/ulpd.log" 2>&1 &
	ULPD_PID=$!
	wait_until "ulpd to accept connections on $SOCK" "$WAIT_TIMEOUT" ulpd_answers
	log "ulpd running (pid $ULPD_PID)"
}

assert_ulpd_alive()
{
	pid_alive "$ULPD_PID" || fail "ulpd (pid $ULPD_PID) died"
	run_ulpctl status
	[ "$RC" -eq 0 ] || fail "ulpd does not answer 'status' any more (exit $RC): $ERR"
}

# ------------------------------------------------------------- targets

target_pid()
{
	printf '%s' "${TPID[$1]}"
}

reply_arrived()
{
	local name=$1 want=$2 have
	have=$(wc -l <"${TOUT[$name]}")
	[ "$have" -ge "$want" ] && return 0
	pid_alive "${TPID[$name]}" && return 1
	# Dead; but it may have answered just before.
	have=$(wc -l <"${TOUT[$name]}")
	[ "$have" -ge "$want" ] && return 0
	fail "target $name (pid ${TPID[$name]}) died"
}

# start_target NAME PROGRAM [ARGS...]: start $TARGETS/PROGRAM with stdin
# from a FIFO we hold open, stdout to $TMP/NAME.out; wait for "ready".
# TARGET_PREFIX: a command start_target runs targets through, which must
# end by exec'ing its arguments (the target keeps the PID), e.g. unshare.
TARGET_PREFIX=()

start_target()
{
	local name=$1 prog=$2 fifo fd
	shift 2
	[ -z "${TPID[$name]:-}" ] || fail "target $name started twice"
	need_file "$TARGETS/$prog"
	fifo=$TMP/$name.in
	rm -f "$fifo" "$TMP/$name.out"
	mkfifo "$fifo"
	: >"$TMP/$name.out"
	"${TARGET_PREFIX[@]}" "$TARGETS/$prog" "$@" <"$fifo" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	TPID[$name]=$!
	# Read-write: never blocks, and the target never sees EOF while we live.
	exec {fd}<>"$fifo"
	TFD[$name]=$fd
	TOUT[$name]=$TMP/$name.out
	TLINES[$name]=1
	# TARGET_NO_WAIT=1: return at once; target_ready NAME waits later
	[ -n "${TARGET_NO_WAIT:-}" ] || target_ready "$name"
	log "target $name: $prog $* (pid ${TPID[$name]})"
}

# target_ready NAME: the target printed "ready" (within the wait timeout).
target_ready()
{
	wait_until "target $1 to print 'ready'" "$WAIT_TIMEOUT" reply_arrived "$1" 1
	[ "$(head -n 1 "$TMP/$1.out")" = ready ] ||
		fail "target $1 printed '$(head -n 1 "$TMP/$1.out")' instead of 'ready'"
}

# stop_target NAME: kill it by PID (if still alive), reap it, forget it.
stop_target()
{
	local name=$1 fd=${TFD[$1]}
	kill_pid "${TPID[$name]}" KILL
	exec {fd}>&-
	unset "TPID[$name]" "TFD[$name]" "TOUT[$name]" "TLINES[$name]"
}

# send_cmd NAME COMMAND: send one command line, wait for its one reply
# line, leave it in $REPLY.
send_cmd()
{
	local name=$1 cmd=$2 want
	want=$((TLINES[$name] + 1))
	printf '%s\n' "$cmd" >&"${TFD[$name]}"
	wait_until "target $name to answer '$cmd'" "$WAIT_TIMEOUT" reply_arrived "$name" "$want"
	TLINES[$name]=$want
	REPLY=$(sed -n "${want}p" "${TOUT[$name]}")
}

# expect_reply NAME COMMAND EXPECTED
expect_reply()
{
	send_cmd "$1" "$2"
	[ "$REPLY" = "$3" ] || fail "target $1: '$2' answered '$REPLY', expected '$3'"
	log "$1: $2 -> $REPLY"
}

# ------------------------------------------------------------- ulpctl

# run_ulpctl ARGS...: run ulpctl (bounded by $CMD_TIMEOUT) with our socket;
# sets RC, OUT, ERR.  Never fails by itself except on a timeout.
run_ulpctl()
{
	local t0 t1
	t0=$(now_us)
	set +e
	timeout -k 5 "$CMD_TIMEOUT" "$ULPCTL_BIN" "$@" --socket "$SOCK" \
		>"$TMP/ulpctl.stdout" 2>"$TMP/ulpctl.stderr" </dev/null
	RC=$?
	set -e
	t1=$(now_us)
	OUT=$(cat "$TMP/ulpctl.stdout")
	ERR=$(cat "$TMP/ulpctl.stderr")
	{
		printf '$ ulpctl %s  (exit %d, %d ms)\n' "$*" "$RC" $(((t1 - t0) / 1000))
		printf '%s\n' "$OUT"
		printf '%s\n' "$ERR"
	} >>"$TMP/ulpctl.last"
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail "ulpctl $* did not finish within ${CMD_TIMEOUT}s"
	fi
}

# ulpctl_ok ARGS...: must exit 0.
ulpctl_ok()
{
	run_ulpctl "$@"
	[ "$RC" -eq 0 ] || fail "ulpctl $* exited $RC: $ERR"
	log "ulpctl $*: ${OUT//$'\n'/ | }"
}

# expect_fail ARGS... SUBSTRING: ulpctl ARGS must exit 1 with an error
# line "ulpctl: ...SUBSTRING..." on stderr.
expect_fail()
{
	local sub=${*: -1}
	local args=("${@:1:$#-1}")
	run_ulpctl "${args[@]}"
	[ "$RC" -ne 0 ] || fail "ulpctl ${args[*]} succeeded, expected an error with '$sub'"
	[ "$RC" -eq 1 ] || fail "ulpctl ${args[*]} exited $RC, expected 1: $ERR"
	assert_contains "$ERR" "ulpctl: " "stderr of ulpctl ${args[*]}"
	assert_contains "$ERR" "$sub" "stderr of ulpctl ${args[*]}"
	log "ulpctl ${args[*]}: refused: ${ERR//$'\n'/ | }"
}

# ------------------------------------------------------------ asserts

assert_eq()
{
	[ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'"
}

assert_contains()
{
	[[ $1 == *"$2"* ]] || fail "${3:-output} does not contain '$2': '$1'"
}

assert_not_contains()
{
	[[ $1 != *"$2"* ]] || fail "${3:-output} contains '$2': '$1'"
}

# ------------------------------------------------------------- JSON
# --json output is flattened by ulp_test_json (tests/targets) into lines
# "PATH<TAB>VALUE", e.g. ".processes[0].patches[0].name<TAB>"demo"";
# values are JSON text (strings keep their quotes).

# json_load: parse $OUT (must be valid JSON) into JSON_FLAT.
json_load()
{
	need_file "$TARGETS/ulp_test_json"
	JSON_FLAT=$("$TARGETS/ulp_test_json" <<<"$OUT") || fail "not valid JSON: $OUT"
}

# json_get PATH: the value at PATH, empty if absent.
json_get()
{
	awk -F'\t' -v p="$1" '$1 == p { print $2; exit }' <<<"$JSON_FLAT"
}

# json_len ARRAY_PATH: number of elements (0 if absent or empty).
json_len()
{
	awk -F'\t' -v a="$1[" 'index($1, a) == 1 {
		rest = substr($1, length(a) + 1)
		seen[substr(rest, 1, index(rest, "]") - 1)] = 1
	} END { n = 0; for (i in seen) n++; print n }' <<<"$JSON_FLAT"
}

# json_find ARRAY_PATH KEY VALUE: the paths ("ARRAY[i]") of the elements
# whose KEY is VALUE (JSON text), one per line.
json_find()
{
	awk -F'\t' -v a="$1[" -v k="$2" -v v="$3" 'index($1, a) == 1 && $2 == v {
		rest = substr($1, length(a) + 1)
		i = index(rest, "]")
		if (substr(rest, i + 1) == "." k)
			print a substr(rest, 1, i)
	}' <<<"$JSON_FLAT"
}

# json_one ARRAY_PATH KEY VALUE: exactly one such element; its path in JREF.
json_one()
{
	local found
	found=$(json_find "$@")
	[ -n "$found" ] || fail "--json: no element of $1 with $2 = $3 in: $OUT"
	[ "$(wc -l <<<"$found")" -eq 1 ] || fail "--json: several elements of $1 with $2 = $3 in: $OUT"
	JREF=$found
}

# assert_json_eq PATH VALUE: the value at PATH is VALUE (JSON text).
assert_json_eq()
{
	local got
	got=$(json_get "$1")
	[ "$got" = "$2" ] || fail "--json: $1 is '$got', expected '$2' in: $OUT"
}

# ------------------------------------------------ memory and symbols

# mapped_file PID [PATTERN]: the main executable's path, or the first
# mapped file whose path contains PATTERN; a file the process has but no
# path names (a patch ulpd loaded from a memfd) as /proc/PID/map_files/RANGE
# of its first mapping.
mapped_file()
{
	if [ -n "${2:-}" ]; then
		awk -v p="$2" -v pid="$1" 'index($6, p) && $3 ~ /^0+$/ {
			if ($7 == "" && substr($6, 1, 1) == "/") print $6
			else print "/proc/" pid "/map_files/" $1
			exit
		}' "/proc/$1/maps"
	else
		readlink "/proc/$1/exe"
	fi
}

# load_base PID FILE: what to add to FILE's symbol values (decimal).
load_base()
{
	local vaddr base
	if readelf -hW "$2" | grep -q 'Type:[[:space:]]*EXEC'; then
		printf 0
		return
	fi
	vaddr=$(readelf -lW "$2" | awk '$1 == "LOAD" { print $3; exit }')
	if [[ $2 == /proc/*/map_files/* ]]; then
		base=${2##*/}
		base=${base%%-*}
	else
		base=$(awk -v f="$2" '$6 == f && $3 ~ /^0+$/ { split($1, a, "-"); print a[1]; exit }' "/proc/$1/maps")
	fi
	[ -n "$base" ] || return 1
	printf '%d' $((0x$base - (vaddr & ~0xfff)))
}

# locate_func PID SPEC: print "ADDR SIZE" (decimal) for every definition of
# a function in the target, by address.  SPEC is SYMBOL (main executable)
# or FILE_PATTERN:SYMBOL (see mapped_file).  Symbols from .symtab, else
# .dynsym (stripped objects).
locate_func()
{
	local pid=$1 spec=$2 file sym base syms pattern=
	sym=${spec#*:}
	[[ $spec == *:* ]] && pattern=${spec%%:*}
	file=$(mapped_file "$pid" "$pattern")
	[ -n "$file" ] && [ -f "$file" ] || return 1
	syms=$(nm -S --defined-only "$file" 2>/dev/null | awk -v s="$sym" 'NF == 4 && $4 == s { print $1, $2 }')
	[ -n "$syms" ] ||
		syms=$(nm -D -S --defined-only "$file" 2>/dev/null | awk -v s="$sym" 'NF == 4 && $4 == s { print $1, $2 }')
	[ -n "$syms" ] || return 1
	base=$(load_base "$pid" "$file") || return 1
	while read -r addr size; do
		printf '%d %d\n' $((base + 0x$addr)) $((0x$size))
	done <<<"$syms"
}

# func_addr PID SPEC [N]: the Nth (1-based, by address) definition, as 0x hex.
func_addr()
{
	local loc
	loc=$(locate_func "$1" "$2" | sed -n "${3:-1}p")
	[ -n "$loc" ] || return 1
	printf '0x%x' "${loc%% *}"
}

# read_mem PID ADDR LEN: hex bytes of the target's memory.
read_mem()
{
	dd if="/proc/$1/mem" bs=4096 iflag=skip_bytes,count_bytes skip=$(($2)) count=$(($3)) status=none |
		od -An -v -tx1 | tr -d ' \n'
}

# snapshot_target NAME LABEL SPEC...: record /proc/PID/maps and the code
# bytes of the functions SPEC... (see locate_func) under LABEL.
snapshot_target()
{
	local name=$1 label=$2 pid spec loc addr size bytes
	shift 2
	pid=${TPID[$name]}
	cat "/proc/$pid/maps" >"$TMP/snap.$name.$label.maps"
	: >"$TMP/snap.$name.$label.code"
	for spec in "$@"; do
		loc=$(locate_func "$pid" "$spec") || fail "cannot locate $spec in target $name"
		while read -r addr size; do
			bytes=$(read_mem "$pid" "$addr" "$size") || true
			[ ${#bytes} -eq $((size * 2)) ] ||
				fail "cannot read $size bytes of $spec at $(printf 0x%x "$addr") in target $name"
			printf '%s 0x%x %d %s\n' "$spec" "$addr" "$size" "$bytes" >>"$TMP/snap.$name.$label.code"
		done <<<"$loc"
	done
}

snapshot_code()
{
	cat "$TMP/snap.$1.$2.code"
}

# assert_same_code NAME LABEL1 LABEL2: function bytes identical.
assert_same_code()
{
	diff -u "$TMP/snap.$1.$2.code" "$TMP/snap.$1.$3.code" >&2 ||
		fail "target $1: code bytes differ between '$2' and '$3'"
	log "$1: code bytes identical ($2 / $3)"
}

# assert_unchanged NAME LABEL1 LABEL2: maps and function bytes identical.
assert_unchanged()
{
	diff -u "$TMP/snap.$1.$2.maps" "$TMP/snap.$1.$3.maps" >&2 ||
		fail "target $1: /proc/PID/maps differs between '$2' and '$3'"
	assert_same_code "$@"
	log "$1: maps identical ($2 / $3)"
}

# assert_no_patches PID: ulpd reports no patch in that process.
assert_no_patches()
{
	local proc
	ulpctl_ok status --json
	json_load
	for proc in $(json_find .processes pid "$1"); do
		[ "$(json_len "$proc.patches")" -eq 0 ] || fail "process $1 still has patches: $OUT"
	done
}

# test_done: the daemon survived the whole test.
test_done()
{
	assert_ulpd_alive
}

# ------------------------------------------- event log, transitions
# Helpers of the kernel livepatch selftest ports (klp_*.sh).

# bg_ulpctl_start LABEL ARGS...: run ulpctl ARGS in the background (its
# output in $TMP/LABEL.out / .err); bg_ulpctl_finish waits for it.
BG_PID=
BG_RC=
BG_OUT=
bg_ulpctl_start()
{
	local label=$1
	shift
	"$ULPCTL_BIN" "$@" --socket "$SOCK" </dev/null >"$TMP/$label.out" 2>"$TMP/$label.err" &
	BG_PID=$!
	BG_OUT=$TMP/$label
	track_pid "$BG_PID"
	log "started in the background (pid $BG_PID): ulpctl $*"
}

# bg_ulpctl_finish: wait (bounded by $CMD_TIMEOUT) for it; its exit in BG_RC.
bg_ulpctl_finish()
{
	wait_until "background ulpctl (pid $BG_PID) to finish" "$CMD_TIMEOUT" pid_gone "$BG_PID"
	set +e
	wait "$BG_PID"
	BG_RC=$?
	set -e
	untrack_pid "$BG_PID"
	log "background ulpctl exited $BG_RC: $(cat "$BG_OUT.out" "$BG_OUT.err")"
}

# kill_ulpd: SIGKILL our ulpd (by PID) and forget it (it "crashed").
kill_ulpd()
{
	[ -n "$ULPD_PID" ] || fail "kill_ulpd: no ulpd running"
	log "killing ulpd (pid $ULPD_PID) with SIGKILL"
	kill_pid "$ULPD_PID" KILL
	ULPD_PID=
}

# LOG_IGNORE: a basic regular expression; event log lines matching it whole
# are left out of every comparison while it is set (an optional line).
LOG_IGNORE=

# log_reached NAME N: target NAME's event log (`ulpctl log`) has at least N
# lines (see LOG_IGNORE); the log is left in $OUT.
# (Polled: not recorded in ulpctl.last; check_log_file shows the result.)
log_reached()
{
	local n=0
	set +e
	timeout -k 5 "$CMD_TIMEOUT" "$ULPCTL_BIN" log -p "${TPID[$1]}" --socket "$SOCK" \
		>"$TMP/ulpctl.log.stdout" 2>"$TMP/ulpctl.log.stderr" </dev/null
	RC=$?
	set -e
	OUT=$(cat "$TMP/ulpctl.log.stdout")
	ERR=$(cat "$TMP/ulpctl.log.stderr")
	[ "$RC" -eq 0 ] || return 1
	if [ -n "$LOG_IGNORE" ]; then
		OUT=$(grep -vx -- "$LOG_IGNORE" <<<"$OUT" || true)
	fi
	[ -z "$OUT" ] || n=$(wc -l <<<"$OUT")
	[ "$n" -ge "$2" ]
}

# check_log NAME <<'EOF' ... EOF: target NAME's WHOLE event log is exactly
# the lines given on stdin (the kernel selftests' check_result).  Waits
# (bounded by $WAIT_TIMEOUT) until the log has at least that many lines,
# then compares; on a difference fails showing a diff (expected / actual).
check_log()
{
	cat >"$TMP/$1.log.expected"
	check_log_file "$1"
}

# check_log_append NAME <<'EOF' ... EOF: the lines on stdin come after what
# the last check_log / check_log_append of NAME expected; checks the whole
# log again (so lines that showed up late, or twice, are caught too).
check_log_append()
{
	[ -e "$TMP/$1.log.expected" ] || : >"$TMP/$1.log.expected"
	cat >>"$TMP/$1.log.expected"
	check_log_file "$1"
}

# check_log_file NAME: compare with $TMP/NAME.log.expected (see check_log).
check_log_file()
{
	local name=$1 exp=$TMP/$1.log.expected act=$TMP/$1.log.actual want deadline reached=0
	want=$(grep -c '' "$exp" || true)
	deadline=$(($(now_us) + WAIT_TIMEOUT * 1000000))
	while :; do
		if log_reached "$name" "$want"; then
			reached=1
			break
		fi
		(($(now_us) <= deadline)) || break
		sleep 0.1
	done
	[ "$RC" -eq 0 ] || fail "ulpctl log -p ${TPID[$name]} exited $RC: $ERR"
	if [ -n "$OUT" ]; then
		printf '%s\n' "$OUT" >"$act"
	else
		: >"$act"
	fi
	if ! diff -u --label expected --label actual "$exp" "$act" >"$TMP/$name.log.diff"; then
		cat "$TMP/$name.log.diff" >&2
		if [ "$reached" = 1 ]; then
			fail "target $name: event log differs from the expected one (diff above)"
		fi
		fail "target $name: event log has $(grep -c '' "$act" || true) lines after ${WAIT_TIMEOUT}s, expected $want (diff above)"
	fi
	log "$name: event log as expected ($want lines)"
}

# patch_transition PID NAME: set TRANSITION to "true" / "false", whether
# patch NAME of process PID is in transition (`ulpctl status --json`), or to
# "absent" if that process has no such patch.
TRANSITION=
patch_transition()
{
	local proc ref
	run_ulpctl status --json
	[ "$RC" -eq 0 ] || fail "ulpctl status --json exited $RC: $ERR"
	json_load
	TRANSITION=absent
	proc=$(json_find .processes pid "$1")
	[ -n "$proc" ] || return 0
	ref=$(json_find "$proc.patches" name "\"$2\"")
	[ -n "$ref" ] || return 0
	TRANSITION=$(json_get "$ref.transition")
}

# assert_transition PID NAME true|false|absent
assert_transition()
{
	patch_transition "$1" "$2"
	[ "$TRANSITION" = "$3" ] ||
		fail "patch '$2' of process $1: transition is '$TRANSITION', expected '$3': $OUT"
	log "patch '$2' of process $1: transition=$TRANSITION"
}

transition_is()
{
	patch_transition "$1" "$2"
	[ "$TRANSITION" = "$3" ]
}

# wait_transition_done PID NAME [SECONDS]: poll `ulpctl status --json` until
# patch NAME of process PID is out of transition (ulpd retries a stalled
# transition by itself about every second).
wait_transition_done()
{
	wait_until "patch '$2' of process $1 to leave its transition" "${3:-$CMD_TIMEOUT}" \
		transition_is "$1" "$2" false
}

# task_in_read PID TID: thread TID of PID is blocked in read() (syscall 0).
task_in_read()
{
	[[ $(cat "/proc/$1/task/$2/syscall" 2>/dev/null) == "0 "* ]]
}

# raw_request JSON [PREFIX...]: send one request line to ulpd as is (no
# file descriptor with it, unlike ulpctl), run through PREFIX (e.g. setpriv
# to be another user); print the reply.
raw_request()
{
	local req=$1
	shift
	"$@" /usr/bin/python3 - "$SOCK" "$req" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
s.shutdown(socket.SHUT_WR)
print(s.makefile().read().strip())
PY
}

# reply_is NAME COMMAND EXPECTED: send COMMAND, true if the reply is
# EXPECTED (for wait_until).
reply_is()
{
	send_cmd "$1" "$2"
	[ "$REPLY" = "$3" ]
}

# assert_printable TEXT WHAT: TEXT is plain printable text (an error message
# built from freed or uninitialised memory is not).
assert_printable()
{
	[[ $1 != *[^[:print:][:space:]]* ]] || fail "$2 holds non-printable bytes: $(printf '%q' "$1")"
}
