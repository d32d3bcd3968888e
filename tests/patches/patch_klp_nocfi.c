// SPDX-License-Identifier: MIT
/*
 * patch_klp_nocfi.so - "klp_nocfi": replaces klp_outer_func and
 * klp_main_func of tests/targets/klp_target.c together, for
 * integration.unreliable_stack: a thread inside the old klp_outer_func that
 * calls klp_main_func through code without unwind information must still
 * get the old klp_main_func.
 */
#include <ulp/patch.h>

static const char *nocfi_klp_outer_func(void)
{
	return "outer:patched";
}

static const char *nocfi_klp_main_func(void)
{
	return "main:nocfi-patched";
}

static struct ulp_func main_funcs[] = {
	{ .old_name = "klp_outer_func", .new_func = nocfi_klp_outer_func },
	{ .old_name = "klp_main_func", .new_func = nocfi_klp_main_func },
	{},
};

static struct ulp_object objs[] = { { .name = NULL, .funcs = main_funcs }, {} };

ULP_PATCH("klp_nocfi", .objs = objs);
