// SPDX-License-Identifier: MIT
/*
 * patch_klp_hot.so - "klp_hot": a new klp_hot_func() for
 * tests/targets/klp_target.c, x + 1000 instead of x + 1, busy-looping as
 * long as the old one, so that the spinner threads ("spin N") spend most of
 * their time inside the patched function in both directions (apply and
 * revert).  No callbacks.
 *
 * Built again with other definitions for function stacks and atomic
 * replace (integration.function_stacks):
 *   KLP_HOT_NAME, KLP_HOT_ADD  another patch: x + KLP_HOT_ADD
 *   KLP_HOT_CALL_OLD           old_func(x) + KLP_HOT_ADD: the original
 *                              through ulp_func.old_func, whatever is
 *                              stacked under this patch
 *   KLP_HOT_REPLACE            .replace = true, and klp_main_func
 *                              ("main:replaced") instead of klp_hot_func
 *   KLP_HOT_SYMPOS             its old_sympos (1: the same unique function
 *                              as 0, which earlier patches name with 0)
 *   KLP_HOT_TWICE              klp_main_func listed again, as sympos 1: refused
 */
#include <ulp/patch.h>

#ifndef KLP_HOT_NAME
#define KLP_HOT_NAME "klp_hot"
#endif
#ifndef KLP_HOT_ADD
#define KLP_HOT_ADD 1000
#endif

/* The same as KLP_HOT_SPINS in klp_target.c. */
#define KLP_HOT_SPINS 200000L

#ifdef KLP_HOT_REPLACE
static const char *replaced_klp_main_func(void)
{
	return "main:replaced";
}

#ifndef KLP_HOT_SYMPOS
#define KLP_HOT_SYMPOS 0
#endif

static struct ulp_func funcs[] = {
	{ .old_name = "klp_main_func",
	  .new_func = replaced_klp_main_func,
	  .old_sympos = KLP_HOT_SYMPOS },
#ifdef KLP_HOT_TWICE
	{ .old_name = "klp_main_func", .new_func = replaced_klp_main_func, .old_sympos = 1 },
#endif
	{}
};
#else
static int new_klp_hot_func(int x);

static struct ulp_func funcs[] = { { .old_name = "klp_hot_func", .new_func = new_klp_hot_func },
				   {} };

static __attribute__((noipa)) int new_klp_hot_func(int x)
{
#ifdef KLP_HOT_CALL_OLD
	return ((int (*)(int))funcs[0].old_func)(x) + KLP_HOT_ADD;
#else
	for (volatile long i = 0; i < KLP_HOT_SPINS; i++)
		;
	return x + KLP_HOT_ADD;
#endif
}
#endif

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

#ifdef KLP_HOT_REPLACE
ULP_PATCH(KLP_HOT_NAME, .objs = objs, .replace = true);
#else
ULP_PATCH(KLP_HOT_NAME, .objs = objs);
#endif
