#!/usr/bin/env bash
# klp_shadow_vars: the kernel's livepatch selftest test-shadow-vars.sh for
# ulp, its case "basic shadow variable API": the kernel module
# test_klp_shadow_vars.ko runs a sequence of klp_shadow_* calls from its
# init and logs each; here patch_klp_shadow_vars.so ("test_klp_shadow_vars")
# runs the same ulp_shadow_* calls from its pre_patch callback in klp_target
# and logs them with ulp_log() (read its header: pointers as PTRn, no
# gfp_flags).  The WHOLE event log is compared: the kernel's expected dmesg
# with "klp_shadow_" -> "ulp_shadow_", inside the patch's apply lines.
#
# Then the patch is reverted and applied again: every shadow variable was
# freed (the sequence starts with a lookup that must find nothing, on the
# same stack addresses), and the log is the same again.
. "$(dirname "$0")/lib.sh"

PATCH=$PATCHES/patch_klp_shadow_vars.so
need_file "$PATCH"
need_file "$TARGETS/klp_target"

start_ulpd
start_target s klp_target
pid=$(target_pid s)

# The lines pre_patch logs, with the patch's prefix.
shadow_lines()
{
	sed 's/^/test_klp_shadow_vars: /' <<'EOF'
ulp_shadow_get(obj=PTR1, id=0x1234) = PTR0
  got expected NULL result
shadow_ctor: PTR3 -> PTR2
ulp_shadow_get_or_alloc(obj=PTR1, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR2 = PTR3
shadow_ctor: PTR6 -> PTR5
ulp_shadow_alloc(obj=PTR1, id=0x1235, size=8), ctor=PTR4, ctor_data=PTR5 = PTR6
shadow_ctor: PTR8 -> PTR7
ulp_shadow_alloc(obj=PTR9, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR7 = PTR8
shadow_ctor: PTR11 -> PTR10
ulp_shadow_alloc(obj=PTR9, id=0x1235, size=8), ctor=PTR4, ctor_data=PTR10 = PTR11
shadow_ctor: PTR13 -> PTR12
ulp_shadow_get_or_alloc(obj=PTR14, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR12 = PTR13
shadow_ctor: PTR16 -> PTR15
ulp_shadow_alloc(obj=PTR14, id=0x1235, size=8), ctor=PTR4, ctor_data=PTR15 = PTR16
ulp_shadow_get(obj=PTR1, id=0x1234) = PTR3
  got expected PTR3 -> PTR2 result
ulp_shadow_get(obj=PTR1, id=0x1235) = PTR6
  got expected PTR6 -> PTR5 result
ulp_shadow_get(obj=PTR9, id=0x1234) = PTR8
  got expected PTR8 -> PTR7 result
ulp_shadow_get(obj=PTR9, id=0x1235) = PTR11
  got expected PTR11 -> PTR10 result
ulp_shadow_get(obj=PTR14, id=0x1234) = PTR13
  got expected PTR13 -> PTR12 result
ulp_shadow_get(obj=PTR14, id=0x1235) = PTR16
  got expected PTR16 -> PTR15 result
ulp_shadow_get_or_alloc(obj=PTR1, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR2 = PTR3
  got expected PTR3 -> PTR2 result
ulp_shadow_get_or_alloc(obj=PTR9, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR7 = PTR8
  got expected PTR8 -> PTR7 result
ulp_shadow_get_or_alloc(obj=PTR14, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR12 = PTR13
  got expected PTR13 -> PTR12 result
shadow_dtor(obj=PTR1, shadow_data=PTR3)
ulp_shadow_free(obj=PTR1, id=0x1234, dtor=PTR17)
ulp_shadow_get(obj=PTR1, id=0x1234) = PTR0
  got expected NULL result
shadow_dtor(obj=PTR9, shadow_data=PTR8)
ulp_shadow_free(obj=PTR9, id=0x1234, dtor=PTR17)
ulp_shadow_get(obj=PTR9, id=0x1234) = PTR0
  got expected NULL result
shadow_dtor(obj=PTR14, shadow_data=PTR13)
ulp_shadow_free(obj=PTR14, id=0x1234, dtor=PTR17)
ulp_shadow_get(obj=PTR14, id=0x1234) = PTR0
  got expected NULL result
ulp_shadow_get(obj=PTR1, id=0x1235) = PTR6
  got expected PTR6 -> PTR5 result
ulp_shadow_get(obj=PTR9, id=0x1235) = PTR11
  got expected PTR11 -> PTR10 result
ulp_shadow_get(obj=PTR14, id=0x1235) = PTR16
  got expected PTR16 -> PTR15 result
ulp_shadow_free_all(id=0x1235, dtor=PTR0)
ulp_shadow_get(obj=PTR1, id=0x1235) = PTR0
  got expected NULL result
ulp_shadow_get(obj=PTR9, id=0x1235) = PTR0
  got expected NULL result
ulp_shadow_get(obj=PTR14, id=0x1235) = PTR0
  got expected NULL result
EOF
}

# apply_expected: what one apply adds to the event log.
apply_expected()
{
	printf '%s\n' "ulp: enabling patch 'test_klp_shadow_vars'" \
		"ulp: 'test_klp_shadow_vars': initializing patching transition"
	shadow_lines
	printf '%s\n' "ulp: 'test_klp_shadow_vars': starting patching transition" \
		"ulp: 'test_klp_shadow_vars': completing patching transition" \
		"ulp: 'test_klp_shadow_vars': patching complete"
}

revert_expected()
{
	printf '%s\n' "ulp: 'test_klp_shadow_vars': initializing unpatching transition" \
		"ulp: 'test_klp_shadow_vars': starting unpatching transition" \
		"ulp: 'test_klp_shadow_vars': completing unpatching transition" \
		"ulp: 'test_klp_shadow_vars': unpatching complete"
}

step "basic shadow variable API"
ulpctl_ok apply "$PATCH" -p "$pid"
apply_expected | check_log s

ulpctl_ok revert test_klp_shadow_vars -p "$pid"
revert_expected | check_log_append s
assert_no_patches "$pid"

step "the same again: nothing was left behind"
ulpctl_ok apply "$PATCH" -p "$pid"
apply_expected | check_log_append s
ulpctl_ok revert test_klp_shadow_vars -p "$pid"
revert_expected | check_log_append s
assert_no_patches "$pid"
expect_reply s "call main" "main=main:orig"
stop_target s

test_done
