#!/usr/bin/env bash
# symbol_refs: a fix that reads and updates the target's file-static state
# (struct ulp_symbol_ref, filled when the patch is loaded): klp_count()
# adds the static klp_counter_step() (1) to the static klp_counter;
# patch_klp_symbols.so's replacement adds ten steps through references to
# both.  The counter carries on across apply and revert: the patched code
# works on the target's own variable, not a copy.  A reference that cannot
# be resolved refuses the patch before anything changes.  The same for a
# file-static thread-local counter, through ulp_tls_addr(): each thread's
# own copy.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_klp_symbols.so
need_file "$PATCH"
start_ulpd
start_target c klp_target
pid=$(target_pid c)

expect_reply c count count=1
expect_reply c count count=2
expect_reply c "tls count" tls=1
ulpctl_ok apply "$PATCH" -p "$pid"
expect_reply c count count=12
expect_reply c count count=22
# Thread-local state: each thread its own copy, the fix works on it.
expect_reply c "tls count" tls=101
expect_reply c "thread tls count" "thread tls=100"
expect_reply c "tls count" tls=201
ulpctl_ok revert klp_symbols -p "$pid"
expect_reply c count count=23
expect_reply c "tls count" tls=202
assert_no_patches "$pid"
stop_target c

# A second process of the program (another load bias): ulpd resolves the
# references again from what it learnt of the first, right for this one.
start_target d klp_target
dpid=$(target_pid d)
expect_reply d "tls count" tls=1
ulpctl_ok apply "$PATCH" -p "$dpid"
expect_reply d count count=10
expect_reply d "tls count" tls=101
expect_reply d "thread tls count" "thread tls=100"
ulpctl_ok revert klp_symbols -p "$dpid"
stop_target d

# A reference to a symbol the process lacks: refused, nothing changes.
start_target m klp_target
mpid=$(target_pid m)
expect_reply m count count=1
snapshot_target m orig klp_count
expect_fail apply "$PATCHES/patch_klp_symbols_missing.so" -p "$mpid" \
	"symbol reference 'klp_no_such_counter'"
assert_contains "$ERR" "not found in object 'main'" "the refusal"
expect_reply m count count=2
snapshot_target m now klp_count
assert_unchanged m orig now
assert_no_patches "$mpid"
stop_target m

test_done
