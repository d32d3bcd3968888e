#!/usr/bin/env bash
# socket_activation: ulpd as ulpd.socket + ulpd.service run it.
#
# systemd-socket-activate listens on the socket and starts ulpd at the
# first connection, passing the socket (LISTEN_FDS), as systemd does.
# ulpd runs with the capability bounding set of ulpd.service, no_new_privs
# and W^X (PR_SET_MDWE), with NOTIFY_SOCKET pointed at a datagram socket
# this test reads, and, where namespaces can be made, in a network
# namespace of its own (PrivateNetwork=) and a mount namespace where
# standard error is "connected to the journal" ($JOURNAL_STREAM) and a
# stand-in journald socket is bound over /run/systemd/journal/socket.
#
# Checks: ulpd answers on the passed socket; READY=1 comes from ulpd once it
# serves, STATUS= follows the events, STOPPING=1 at exit; apply and revert
# through it, to a process of root and to a process of another user (the
# unit's capabilities must suffice for that); the journal entries carry
# ULP_EVENT=, ULP_PID=, ULP_PATCH=, PRIORITY=; after ulpd exits the socket
# path is still there, and a new ulpd started the same way (without
# --socket: it serves whatever systemd passes) serves it; a passed socket
# other than the one --socket names is refused.
. "$(dirname "$0")/lib.sh"

for tool in systemd-socket-activate python3 setpriv; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (.ci/deps installs it)"
done
UNIT=$ULP_BUILD/systemd/ulpd.service
need_file "$UNIT"
need_file "$ULPD_BIN"
need_file "$ULPCTL_BIN"
PATCH=$PATCHES/patch_compute.so
need_file "$PATCH"

# ---------------------------------------------------------------- helpers

# The capability bounding set of the unit, as setpriv(1) wants it.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
[ -n "$caps" ] || fail "$UNIT has no CapabilityBoundingSet="
SETPRIV_CAPS=-all
for c in $caps; do
	c=${c#CAP_}
	SETPRIV_CAPS+=",+${c,,}"
done
grep -qx 'NoNewPrivileges=yes' "$UNIT" || fail "$UNIT does not set NoNewPrivileges=yes"
log "ulpd runs with the unit's capabilities: $caps; no_new_privs"

# MemoryDenyWriteExecute=yes: the kernel's own W^X for a process
# (PR_SET_MDWE, Linux 6.3 and later; kept across execve), where it exists.
cat >"$TMP/mdwe-exec.py" <<'EOF'
import ctypes, os, sys

libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    print(f"mdwe-exec: no PR_SET_MDWE: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
os.execv(sys.argv[1], sys.argv[1:])
EOF

# A process of another user must be able to run the target, the runtime
# and the patch: copies in a directory it can reach.
chmod 0711 "$TMP"
PUB=$TMP/pub
mkdir -m 0755 "$PUB" "$TMP/bin"
cp "$TARGETS/target_basic" "$ULP_RUNTIME" "$PATCH" "$PUB/"
chmod 0755 "$PUB"/*
RUNTIME=$PUB/libulp-rt.so
NOBODY_UID=$(id -u nobody 2>/dev/null || echo 65534)
NOBODY_GID=$(id -g nobody 2>/dev/null || echo 65534)
cat >"$TMP/bin/target_basic_nobody" <<EOF
#!/bin/sh
exec setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups --inh-caps=-all $PUB/target_basic "\$@"
EOF
chmod 0755 "$TMP/bin"/*

# What systemd would receive: sd_notify datagrams (one "PID: KEY=VALUE"
# line per assignment, PID from SCM_CREDENTIALS) and journal entries (one
# line per entry: |KEY=VALUE|...|, sorted, MESSAGE= last, _PID= the
# sender's).  Exits by itself.
cat >"$TMP/receiver.py" <<'EOF'
import array, os, select, socket, struct, sys, time

notify_path, journal_path, outdir, lifetime = sys.argv[1:5]
socks = {}
for kind, path in (("notify", notify_path), ("journal", journal_path)):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    socks[s] = kind

def journal_fields(data):
    """The native protocol: KEY=VALUE\n, or KEY\n + le64 size + VALUE + \n."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0:
            break
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", data[nl + 1 : nl + 9])
            value = data[nl + 9 : nl + 9 + size]
            i = nl + 9 + size + 1
        fields[key.decode()] = value.decode(errors="replace").replace("\n", "\\n")
    return fields

deadline = time.monotonic() + float(lifetime)
while time.monotonic() < deadline:
    ready, _, _ = select.select(list(socks), [], [], 0.2)
    for s in ready:
        data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(64))
        pid = 0
        for level, kind, cdata in anc:
            if level != socket.SOL_SOCKET:
                continue
            if kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
            elif kind == socket.SCM_RIGHTS:  # a large entry comes in a memfd
                fd = array.array("i", cdata[:4])[0]
                data = os.pread(fd, 1 << 24, 0)
                os.close(fd)
        if socks[s] == "notify":
            lines = [f"{pid}: {a}" for a in data.decode(errors="replace").split("\n") if a]
            out = "notify.log"
        else:
            e = journal_fields(data)
            msg = e.pop("MESSAGE", "")
            e["_PID"] = str(pid)
            lines = ["".join(f"|{k}={e[k]}" for k in sorted(e)) + f"|MESSAGE={msg}|"]
            out = "journal.log"
        with open(os.path.join(outdir, out), "a") as f:
            f.write("".join(l + "\n" for l in lines))
EOF
NOTIFY_LOG=$TMP/notify.log
JOURNAL_LOG=$TMP/journal.log
: >"$NOTIFY_LOG"
: >"$JOURNAL_LOG"
python3 "$TMP/receiver.py" "$TMP/notify.sock" "$TMP/journal.sock" "$TMP" 600 \
	</dev/null >"$TMP/receiver.err" 2>&1 &
track_pid $!
receiver_ready()
{
	[ -S "$TMP/notify.sock" ] && [ -S "$TMP/journal.sock" ]
}
wait_until "the notify and journal receiver to listen" "$WAIT_TIMEOUT" receiver_ready

# The stand-in journald needs a mount namespace of ulpd's own (where
# /run is a fresh tmpfs); ulpd gets a network namespace of its own too, as
# PrivateNetwork= gives it (unix sockets bound in the file system must
# still reach and be reached).  Without namespaces (no CAP_SYS_ADMIN),
# ulpd runs without a journal and that part is skipped.
JOURNAL=0
if unshare -m -n --propagation private true 2>/dev/null; then
	JOURNAL=1
else
	log "cannot make a mount namespace: journal entries are not checked"
fi

# start_activated [-l PATH] ULPD_ARGS...: systemd-socket-activate on PATH
# (default $SOCK) starting ulpd as the unit would at the first connection;
# its PID (that of ulpd once started) in ULPD_PID.
start_activated()
{
	local listen=$SOCK js=
	if [ "${1:-}" = -l ]; then
		listen=$2
		shift 2
	fi
	local cmd=(systemd-socket-activate -l "$listen" -E "NOTIFY_SOCKET=$TMP/notify.sock")
	: >>"$TMP/ulpd.log"
	if [ "$JOURNAL" = 1 ]; then
		# standard error is the stream $JOURNAL_STREAM names: "the journal"
		js=$(stat -c '%d:%i' "$TMP/ulpd.log")
		# shellcheck disable=SC2016 # expanded by that sh
		cmd=(unshare -m -n --propagation private -- sh -c '
			mount -t tmpfs ulp-test-run /run &&
			mkdir -p /run/systemd/journal &&
			: >/run/systemd/journal/socket &&
			mount --bind "$0" /run/systemd/journal/socket &&
			exec "$@"' "$TMP/journal.sock" "${cmd[@]}" -E "JOURNAL_STREAM=$js")
	fi
	cmd+=(-- setpriv "--bounding-set=$SETPRIV_CAPS" --inh-caps=-all --no-new-privs --
		python3 "$TMP/mdwe-exec.py"
		"$ULPD_BIN" --state-dir "$TMP/state" --runtime "$RUNTIME" "$@")
	mkdir -p "$TMP/state"
	"${cmd[@]}" </dev/null >>"$TMP/ulpd.log" 2>&1 &
	ULPD_PID=$!
	log "socket activation of ulpd on $listen (pid $ULPD_PID)"
	wait_until "systemd-socket-activate to listen on $listen" "$WAIT_TIMEOUT" test -S "$listen"
}

is_ulpd()
{
	[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$(readlink -f "$ULPD_BIN")" ]
}

notified()
{
	grep -qxF -- "$1" "$NOTIFY_LOG"
}

# journal_has FIELD=VALUE...: an entry carrying every one of these fields.
journal_has()
{
	local lines f
	lines=$(cat "$JOURNAL_LOG")
	for f in "$@"; do
		lines=$(grep -F -- "|$f|" <<<"$lines" || true)
		[ -n "$lines" ] || return 1
	done
}

assert_journal()
{
	[ "$JOURNAL" = 1 ] || return 0
	wait_until "a journal entry with $*" "$WAIT_TIMEOUT" journal_has "$@"
	log "journal: $*"
}

# -------------------------------------------------------- first instance

step "ulpd started by the first connection to the socket"
start_activated --socket "$SOCK"
is_ulpd "$ULPD_PID" && fail "ulpd started before any connection"
wait_until "ulpd to answer 'status' on the passed socket" "$WAIT_TIMEOUT" ulpd_answers
is_ulpd "$ULPD_PID" || fail "pid $ULPD_PID is not ulpd: $(readlink "/proc/$ULPD_PID/exe")"
grep -q '^NoNewPrivs:[[:space:]]*1$' "/proc/$ULPD_PID/status" || fail "ulpd runs without no_new_privs"
first_pid=$ULPD_PID

step "READY=1 and STATUS= from ulpd"
wait_until "READY=1 from ulpd (pid $ULPD_PID)" "$WAIT_TIMEOUT" notified "$ULPD_PID: READY=1"
notified "$ULPD_PID: STATUS=Serving $SOCK; no event yet" ||
	fail "no STATUS= naming the socket: $(cat "$NOTIFY_LOG")"
assert_journal ULP_EVENT=start "_PID=$ULPD_PID" PRIORITY=6

step "apply and revert through it: a process of root"
start_target t target_basic
pid=$(target_pid t)
expect_reply t "call 5" "compute(5)=6"
ulpctl_ok apply "$PUB/patch_compute.so" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
wait_until "STATUS= with the completed apply" "$WAIT_TIMEOUT" \
	notified "$ULPD_PID: STATUS=Serving $SOCK; last event: process $pid: ulp: 'compute_fix': patching complete"
assert_journal ULP_EVENT=apply "ULP_PID=$pid" ULP_PATCH=compute_fix PRIORITY=5 \
	"MESSAGE=process $pid: ulp: 'compute_fix': patching complete"
assert_journal ULP_EVENT=transition-start "ULP_PID=$pid" ULP_PATCH=compute_fix \
	ULP_TRANSITION=patching
assert_journal ULP_EVENT=patch-log "ULP_PID=$pid" ULP_PATCH=compute_fix \
	"MESSAGE=process $pid: compute_fix: post_patch_callback: main"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
assert_journal ULP_EVENT=revert "ULP_PID=$pid" ULP_PATCH=compute_fix PRIORITY=5
assert_journal ULP_EVENT=transition-complete "ULP_PID=$pid" ULP_PATCH=compute_fix \
	ULP_TRANSITION=unpatching

step "apply and revert through it: a process of another user"
targets_dir=$TARGETS
TARGETS=$TMP/bin
start_target u target_basic_nobody
TARGETS=$targets_dir
upid=$(target_pid u)
assert_eq "$(stat -c %u "/proc/$upid")" "$NOBODY_UID" "owner of the second target"
expect_reply u "call 5" "compute(5)=6"
ulpctl_ok apply "$PUB/patch_compute.so" -p "$upid"
expect_reply u "call 5" "compute(5)=15"
ulpctl_ok revert compute_fix -p "$upid"
expect_reply u "call 5" "compute(5)=6"
assert_journal ULP_EVENT=revert "ULP_PID=$upid" ULP_PATCH=compute_fix

step "SIGTERM: STOPPING=1, and the socket stays"
kill_pid "$ULPD_PID" TERM
ULPD_PID=
wait_until "STOPPING=1 from ulpd" "$WAIT_TIMEOUT" notified "$first_pid: STOPPING=1"
assert_journal ULP_EVENT=stop "_PID=$first_pid"
[ -S "$SOCK" ] || fail "ulpd removed the socket systemd passed it ($SOCK)"

# ------------------------------------------------------- second instance

step "a new ulpd started the same way serves the socket (no --socket)"
start_activated
wait_until "the new ulpd to answer 'status'" "$WAIT_TIMEOUT" ulpd_answers
is_ulpd "$ULPD_PID" || fail "pid $ULPD_PID is not ulpd"
[ "$ULPD_PID" != "$first_pid" ] || fail "the same ulpd answered"
wait_until "READY=1 from the new ulpd (pid $ULPD_PID)" "$WAIT_TIMEOUT" \
	notified "$ULPD_PID: READY=1"
ulpctl_ok apply "$PUB/patch_compute.so" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
assert_ulpd_alive
second_pid=$ULPD_PID
kill_pid "$ULPD_PID" TERM
ULPD_PID=
wait_until "STOPPING=1 from the second ulpd" "$WAIT_TIMEOUT" notified "$second_pid: STOPPING=1"
[ -S "$SOCK" ] || fail "the second ulpd removed the socket"

# ---------------------------------------------------- the wrong socket

step "a passed socket other than --socket's is refused"
other=$TMP/other.sock
start_activated -l "$other" --socket "$SOCK"
# the connection starts ulpd, which refuses and exits
timeout -k 1 10 "$ULPCTL_BIN" status --socket "$other" >/dev/null 2>&1 &&
	fail "ulpd served $other although --socket says $SOCK"
wait_until "ulpd to exit after refusing $other" "$WAIT_TIMEOUT" pid_gone "$ULPD_PID"
set +e
wait "$ULPD_PID"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "ulpd exited 0 after refusing the socket"
bad_pid=$ULPD_PID
ULPD_PID=
notified "$bad_pid: READY=1" && fail "ulpd said READY=1 on the wrong socket"
want="the socket passed by systemd is $other, not $SOCK as asked (--socket, \$ULP_SOCKET)"
if [ "$JOURNAL" = 1 ]; then
	assert_journal ULP_EVENT=socket-error PRIORITY=3 "MESSAGE=$want"
else
	assert_contains "$(cat "$TMP/ulpd.log")" "ulpd: $want" "ulpd's standard error"
fi
wait_until "STATUS= naming the failure" "$WAIT_TIMEOUT" grep -qF "$bad_pid: ERRNO=" "$NOTIFY_LOG"

log "notifications: $(wc -l <"$NOTIFY_LOG"), journal entries: $(wc -l <"$JOURNAL_LOG")"
