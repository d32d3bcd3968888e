#!/usr/bin/env bash
# patch_store: ulpctl hands the patch file to ulpd as a descriptor; ulpd
# copies it into its store (STATE_DIR/patches/HASH-SIZE.so, its own, mode
# 0600) and the target loads it from a sealed memfd.  So: the client's file
# may change or go once applied (revert, status and a restarted ulpd use the
# copy), which goes once no process has the patch; the target's maps show
# the memfd, never the path; a target in its own mount namespace, where
# neither the patch's path nor the runtime's exists, is patched all the
# same (the runtime then comes as a sealed memfd too); a runtime the target
# cannot load is refused with the loader's own message, the target as it
# was; ulpd opens a path itself only for root.
. "$(dirname "$0")/lib.sh"

need_file "$PATCHES/patch_compute.so"
need_file "$PATCHES/patch_compute_other.so"
start_ulpd

step "the client's file changes and goes after the apply"
cp "$PATCHES/patch_compute.so" "$TMP/fix.so"
start_target t target_basic
pid=$(target_pid t)
snapshot_target t orig compute
ulpctl_ok apply "$TMP/fix.so" -p "$pid"
expect_reply t "call 5" "compute(5)=15"
cp "$PATCHES/patch_compute_other.so" "$TMP/fix.so"
rm "$TMP/fix.so"
stored=$(find "$TMP/state/patches" -name '*.so' -newer "$PATCHES/patch_compute.so")
[ "$(wc -l <<<"$stored")" -eq 1 ] || fail "store holds: $(ls -l "$TMP/state/patches")"
cmp "$stored" "$PATCHES/patch_compute.so" || fail "the stored copy differs from the patch"
assert_eq "$(stat -c '%a %u' "$stored")" "600 0" "mode and owner of the stored copy"
# the kernel's SHA-256 where it has AF_ALG, else a 64-bit FNV-1a
if /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET).bind(("hash", "sha256"))' 2>/dev/null; then
	hash=$(sha256sum "$PATCHES/patch_compute.so" | cut -d' ' -f1)
else
	hash='[0-9a-f]{16}'
fi
[[ ${stored##*/} =~ ^$hash-$(stat -c %s "$stored")\.so$ ]] ||
	fail "store name not HASH-SIZE.so: $stored"
grep -q "/memfd:fix.so (deleted)" "/proc/$pid/maps" || fail "no memfd:fix.so in the maps"
! grep -q "$TMP/fix.so" "/proc/$pid/maps" || fail "the path is mapped, not the memfd"
ulpctl_ok status --json
json_load
json_one .processes pid "$pid"
ulpctl_ok revert compute_fix -p "$pid"
expect_reply t "call 5" "compute(5)=6"
snapshot_target t reverted compute
assert_same_code t orig reverted

step "the same file for two processes: one copy, gone once neither has it"
ulpctl_ok status
[ -z "$(find "$TMP/state/patches" -name '*.so')" ] ||
	fail "a reverted patch's copy stays: $(ls -l "$TMP/state/patches")"
start_target t2 target_basic
ulpctl_ok apply "$PATCHES/patch_compute.so" -p "$pid"
ulpctl_ok apply "$PATCHES/patch_compute.so" -p "$(target_pid t2)"
[ "$(find "$TMP/state/patches" -name '*.so' | wc -l)" -eq 1 ] ||
	fail "store holds: $(ls -l "$TMP/state/patches")"
ulpctl_ok revert compute_fix -p "$pid"
ulpctl_ok status
[ "$(find "$TMP/state/patches" -name '*.so' | wc -l)" -eq 1 ] ||
	fail "the copy went while process t2 still has the patch"
ulpctl_ok revert compute_fix -p "$(target_pid t2)"
ulpctl_ok status
[ -z "$(find "$TMP/state/patches" -name '*.so')" ] ||
	fail "store holds: $(ls -l "$TMP/state/patches")"
stop_target t2
stop_target t

step "a target in its own mount namespace, where the patch's and the runtime's paths are hidden"
mkdir -p "$TMP/hidden"
cp "$PATCHES/patch_compute.so" "$TMP/hidden/fix.so"
rtdir=$(dirname "$(realpath "$ULP_RUNTIME")")
# shellcheck disable=SC2016 # expanded by the inner shell
TARGET_PREFIX=(unshare --mount --propagation private -- sh -c
	'mount -t tmpfs ulp-test "$0" && mount -t tmpfs ulp-test "$1" && shift && exec "$@"'
	"$TMP/hidden" "$rtdir")
start_target ns target_basic
TARGET_PREFIX=()
npid=$(target_pid ns)
[ "$(readlink "/proc/$npid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
	fail "target ns shares our mount namespace"
[ ! -e "/proc/$npid/root$TMP/hidden/fix.so" ] || fail "the patch is visible to target ns"
[ ! -e "/proc/$npid/root$(realpath "$ULP_RUNTIME")" ] || fail "the runtime is visible to target ns"
ulpctl_ok apply "$TMP/hidden/fix.so" -p "$npid"
expect_reply ns "call 5" "compute(5)=15"
grep -q ' /memfd:libulp-rt.so (deleted)$' "/proc/$npid/maps" ||
	fail "the runtime is not mapped from a memfd: $(grep ulp "/proc/$npid/maps")"
ulpctl_ok revert compute_fix -p "$npid"
expect_reply ns "call 5" "compute(5)=6"
stop_target ns
# a target that sees our runtime file loads it by path (pages shared)
start_target v target_basic
vpid=$(target_pid v)
ulpctl_ok apply "$PATCHES/patch_compute.so" -p "$vpid"
grep -q " $(realpath "$ULP_RUNTIME")\$" "/proc/$vpid/maps" ||
	fail "the runtime is not mapped by path: $(grep ulp "/proc/$vpid/maps")"
ulpctl_ok revert compute_fix -p "$vpid"
stop_target v

step "a runtime the target cannot load"
kill_ulpd
mkdir -p "$TMP/badrt"
head -c 4096 /dev/zero | tr '\0' x >"$TMP/badrt/libulp-rt.so" # not ELF
"$ULPD_BIN" --socket "$SOCK" --state-dir "$TMP/state" --runtime "$TMP/badrt/libulp-rt.so" \
	</dev/null >>"$TMP/ulpd.log" 2>&1 &
ULPD_PID=$!
wait_until "ulpd to accept connections on $SOCK" "$WAIT_TIMEOUT" ulpd_answers
start_target b target_basic
bpid=$(target_pid b)
expect_reply b "call 5" "compute(5)=6"
fds_before=$(ls "/proc/$bpid/fd")
run_ulpctl apply "$PATCHES/patch_compute.so" -p "$bpid"
[ "$RC" -eq 1 ] || fail "apply with a broken runtime exited $RC"
assert_contains "$ERR" "cannot load the ulp runtime $TMP/badrt/libulp-rt.so"
assert_contains "$ERR" "invalid ELF header"
expect_reply b "call 5" "compute(5)=6"
! grep -q libulp-rt "/proc/$bpid/maps" || fail "a runtime is mapped after the failed injection"
[ "$(ls "/proc/$bpid/fd")" = "$fds_before" ] || fail "descriptors left after the failed injection"
stop_target b
kill_ulpd
start_ulpd

step "by path (no descriptor): root only"
start_target r target_basic
rpid=$(target_pid r)
# a raw request as ulpctl would send it, but without the file
reply=$(raw_request "{\"cmd\": \"apply\", \"patch\": \"$PATCHES/patch_compute.so\", \"pid\": $rpid}")
[ "$(jq -r .ok <<<"$reply")" = true ] || fail "root's apply by path refused: $reply"
expect_reply r "call 5" "compute(5)=15"
ulpctl_ok revert compute_fix -p "$rpid"
stop_target r

test_done
