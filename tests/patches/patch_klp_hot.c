// SPDX-License-Identifier: MIT
/*
 * patch_klp_hot.so - "klp_hot": a new klp_hot_func() for
 * tests/targets/klp_target.c, x + 1000 instead of x + 1, busy-looping as
 * long as the old one, so that the spinner threads ("spin N") spend most of
 * their time inside the patched function in both directions (apply and
 * revert).  No callbacks.
 */
#include <ulp/patch.h>

/* The same as KLP_HOT_SPINS in klp_target.c. */
#define KLP_HOT_SPINS 200000L

static __attribute__((noipa)) int new_klp_hot_func(int x)
{
	for (volatile long i = 0; i < KLP_HOT_SPINS; i++)
		;
	return x + 1000;
}

static struct ulp_func funcs[] = { { .old_name = "klp_hot_func", .new_func = new_klp_hot_func },
				   {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("klp_hot", .objs = objs);
