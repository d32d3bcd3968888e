#!/usr/bin/env bash
# auth: ulpd authorises every request by the client's SO_PEERCRED
# credentials.  An unprivileged user (ulp-test-user, created if missing
# and left in place) is refused every request naming root's process, a
# process of its own uid running with another gid, and a non-dumpable
# process of its own (each with the reason), and "no such process" for a
# pid that does not exist; it may check, apply, inspect and revert a patch
# in its own process, and `status` shows it that process only, while root
# sees and may patch them all.
# Needs root (to create the user and switch to it); exit 77 (skipped)
# otherwise, or where Yama forbids non-root ptrace altogether.

AUTH_USER=ulp-test-user
if [ "$(id -u)" -ne 0 ]; then
	echo "[auth] SKIP: needs root (creates and switches to the user $AUTH_USER)"
	exit 77
fi
YAMA_SCOPE=0
if [ -r /proc/sys/kernel/yama/ptrace_scope ]; then
	YAMA_SCOPE=$(cat /proc/sys/kernel/yama/ptrace_scope)
fi
if [ "$YAMA_SCOPE" -ge 2 ]; then
	echo "[auth] SKIP: kernel.yama.ptrace_scope is $YAMA_SCOPE: only root may patch anything"
	exit 77
fi

. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
# Idempotent: another run may have created the user meanwhile.
if ! getent passwd "$AUTH_USER" >/dev/null; then
	useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$AUTH_USER" ||
		getent passwd "$AUTH_USER" >/dev/null || fail "cannot create the user $AUTH_USER"
fi
U_UID=$(id -u "$AUTH_USER")
U_GID=$(id -g "$AUTH_USER")
U_GROUP=$(id -gn "$AUTH_USER")
ME="uid $U_UID ($AUTH_USER)"
log "user $AUTH_USER: uid $U_UID, gid $U_GID ($U_GROUP)"

# What the user's processes load must be theirs to read whatever the
# permissions of the build tree: copies in $TMP, which the user may cross
# (0711) but not list.
chmod 0711 "$TMP"
mkdir -m 0755 "$TMP/bin"
need_file "$TARGETS/target_basic"
need_file "$PATCHES/patch_compute.so"
cp "$TARGETS/target_basic" "$TMP/bin/target_basic"
install -m 0644 "$PATCHES/patch_compute.so" "$TMP/patch_compute.so"
install -m 0644 "$ULP_RUNTIME" "$TMP/libulp-rt.so"
ULP_RUNTIME=$TMP/libulp-rt.so
PATCH=$TMP/patch_compute.so

start_ulpd
# Authorisation is per request: the socket is open to everyone, as
# ulpd.socket's SocketMode=0666 makes it (ulpd's own socket follows its umask).
chmod 0666 "$SOCK"

# ulpctl as the user: `as_user expect_fail ...`, `as_user ulpctl_ok ...`.
cat >"$TMP/bin/ulpctl-as-user" <<EOF
#!/bin/sh
exec setpriv --reuid=$U_UID --regid=$U_GID --clear-groups "$ULPCTL_BIN" "\$@"
EOF
chmod 0755 "$TMP/bin/ulpctl-as-user"
as_user()
{
	ULPCTL_BIN=$TMP/bin/ulpctl-as-user "$@"
}

# start_target_as NAME UID GID PROGRAM [ARGS...]: start_target (lib.sh), the
# program running as UID:GID (setpriv execs it: the PID stays the target's).
start_target_as()
{
	local name=$1 uid=$2 gid=$3 prog=$4
	shift 4
	local TARGETS=${prog%/*}
	TARGET_PREFIX=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
	start_target "$name" "${prog##*/}" "$@"
	TARGET_PREFIX=()
}

start_target theirs target_basic
start_target_as mine "$U_UID" "$U_GID" "$TMP/bin/target_basic"
start_target_as wronggid "$U_UID" 0 "$TMP/bin/target_basic"
root_pid=$(target_pid theirs)
my_pid=$(target_pid mine)
gid_pid=$(target_pid wronggid)

step "refused: root's process, for every request naming it"
DENIED="permission denied: process $root_pid belongs to uid 0 (root), not to $ME"
as_user expect_fail apply "$PATCH" -p "$root_pid" "$DENIED"
as_user expect_fail check "$PATCH" -p "$root_pid" "$DENIED"
as_user expect_fail status -p "$root_pid" "$DENIED"
as_user expect_fail threads -p "$root_pid" "$DENIED"
as_user expect_fail log -p "$root_pid" "$DENIED"
as_user expect_fail revert compute_fix -p "$root_pid" "$DENIED"
as_user expect_fail force compute_fix -p "$root_pid" "$DENIED"
# --exe of a program only root runs: nothing the user may patch
as_user ulpctl_ok apply "$PATCH" --exe "$TARGETS/target_basic"
assert_contains "$OUT" "no process of $TARGETS/target_basic that you may patch is running" \
	"apply --exe"
expect_reply theirs "call 5" "compute(5)=6"
assert_no_patches "$root_pid"

# nothing of a refused request is kept: the store is still empty
[ -z "$(find "$TMP/state" -name '*.so' 2>/dev/null)" ] ||
	fail "a refused apply left a file in ulpd's store: $(find "$TMP/state" -name '*.so')"

step "refused: a process of the user's uid running with another gid"
as_user expect_fail apply "$PATCH" -p "$gid_pid" \
	"permission denied: process $gid_pid runs with gid 0 (root), not with gid $U_GID ($U_GROUP) of $ME"
expect_reply wronggid "call 5" "compute(5)=6"

step "refused: a non-dumpable process of the user's own"
# prctl(PR_SET_DUMPABLE, 0) (syscall 157, option 4 on x86-64), then answer
# like a target.  perl is part of every Debian base system.
need_file /usr/bin/perl
start_target_as nodump "$U_UID" "$U_GID" /usr/bin/perl -e \
	'syscall(157, 4, 0, 0, 0, 0) == 0 or die "prctl: $!"; $| = 1; print "ready\n";
	 while (<STDIN>) { print "pong\n" }'
nodump_pid=$(target_pid nodump)
# the premise, as proc_pid(5) describes it: its /proc files now belong to root
assert_eq "$(stat -c %u:%g "/proc/$nodump_pid/status")" 0:0 "owner of /proc/$nodump_pid/status"
assert_eq "$(awk '$1 == "Uid:" { print $2, $3, $4 }' "/proc/$nodump_pid/status")" \
	"$U_UID $U_UID $U_UID" "real, effective and saved uids of process $nodump_pid"
as_user expect_fail apply "$PATCH" -p "$nodump_pid" \
	"permission denied: process $nodump_pid is not dumpable"
as_user expect_fail status -p "$nodump_pid" "is not dumpable"
assert_contains "$ERR" "not $ME" "refusal"
expect_reply nodump ping pong

step "no such process"
true &
dead_pid=$!
wait "$dead_pid"
as_user expect_fail apply "$PATCH" -p "$dead_pid" "no such process: $dead_pid"

if [ "$YAMA_SCOPE" -eq 1 ]; then
	# ulpctl is no ancestor of the user's target: Yama would refuse the
	# user's own ptrace, and so does ulpd.
	step "Yama ptrace_scope 1: the user's own process too"
	as_user expect_fail apply "$PATCH" -p "$my_pid" \
		"permission denied: process $my_pid is not a descendant of the caller"
	log "kernel.yama.ptrace_scope is 1: the allowed case needs scope 0"
	test_done
	exit 0
fi

step "refused: a patch named by path only (ulpd would read it with its rights)"
reply=$(raw_request "{\"cmd\": \"apply\", \"patch\": \"$PATCH\", \"pid\": $my_pid}" \
	setpriv --reuid="$U_UID" --regid="$U_GID" --clear-groups)
[ "$(jq -r .ok <<<"$reply")" = false ] || fail "apply by path accepted from the user: $reply"
assert_contains "$reply" "ulpd reads patch files only as sent by ulpctl" "refusal"
expect_reply mine "call 5" "compute(5)=6"

step "allowed: the user's own process"
as_user ulpctl_ok check "$PATCH" -p "$my_pid"
assert_contains "$OUT" "patch 'compute_fix' can be applied to process $my_pid" "check"
expect_reply mine "call 5" "compute(5)=6"
as_user ulpctl_ok apply "$PATCH" -p "$my_pid"
assert_contains "$OUT" "applied patch 'compute_fix' to process $my_pid" "apply"
expect_reply mine "call 5" "compute(5)=15"
as_user ulpctl_ok threads -p "$my_pid"
as_user ulpctl_ok log -p "$my_pid"
as_user ulpctl_ok status -p "$my_pid"
assert_contains "$OUT" "patch 'compute_fix': enabled=1" "status -p"

step "root may patch any process"
ulpctl_ok apply "$PATCH" -p "$root_pid"
ulpctl_ok apply "$PATCH" -p "$gid_pid"
expect_reply theirs "call 5" "compute(5)=15"
expect_reply wronggid "call 5" "compute(5)=15"
ulpctl_ok status --json
json_load
assert_eq "$(json_len .processes)" 3 "processes root sees"

step "status lists only the user's own processes"
as_user ulpctl_ok status --json
json_load
assert_eq "$(json_len .processes)" 1 "processes the user sees"
assert_json_eq ".processes[0].pid" "$my_pid"
as_user ulpctl_ok status
assert_contains "$OUT" "process $my_pid (" "the user's status"
assert_not_contains "$OUT" "process $root_pid (" "the user's status"
assert_not_contains "$OUT" "process $gid_pid (" "the user's status"

step "revert"
as_user expect_fail revert compute_fix -p "$root_pid" "$DENIED"
expect_reply theirs "call 5" "compute(5)=15"
as_user ulpctl_ok revert compute_fix -p "$my_pid"
assert_contains "$OUT" "reverted patch 'compute_fix' in process $my_pid" "revert"
expect_reply mine "call 5" "compute(5)=6"
ulpctl_ok revert compute_fix -p "$root_pid"
ulpctl_ok revert compute_fix -p "$gid_pid"
expect_reply theirs "call 5" "compute(5)=6"
as_user ulpctl_ok status --json
json_load
assert_eq "$(json_len .processes)" 0 "processes the user sees"

test_done
