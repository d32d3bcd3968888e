// SPDX-License-Identifier: MIT
/*
 * patch_klp_livepatch.so - "klp_livepatch": the kernel selftest module
 * test_klp_livepatch for ulp.  Replaces, without callbacks:
 *
 *   main           klp_main_func  -> "main:livepatched"
 *   libklp_mod.so  klp_mod_func   -> "mod:livepatched"
 *
 * (tests/targets/klp_target.c, tests/targets/klp_mod.c).
 */
#include <ulp/patch.h>

static const char *livepatch_klp_main_func(void)
{
	return "main:livepatched";
}

static const char *livepatch_klp_mod_func(void)
{
	return "mod:livepatched";
}

static struct ulp_func main_funcs[] = {
	{ .old_name = "klp_main_func", .new_func = livepatch_klp_main_func }, {}
};

static struct ulp_func mod_funcs[] = {
	{ .old_name = "klp_mod_func", .new_func = livepatch_klp_mod_func }, {}
};

static struct ulp_object objs[] = { { .name = NULL, .funcs = main_funcs },
				    { .name = "libklp_mod.so", .funcs = mod_funcs },
				    {} };

ULP_PATCH("klp_livepatch", .objs = objs);
