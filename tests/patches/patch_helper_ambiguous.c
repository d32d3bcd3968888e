// SPDX-License-Identifier: MIT
/*
 * patch_helper_ambiguous.so - "helper_ambiguous": names helper without old_sympos
 * although the target has two static helper(): must be refused.
 */
#include <ulp/patch.h>

static int new_helper(int x)
{
	return x * 7;
}

static struct ulp_func funcs[] = { { .old_name = "helper", .new_func = new_helper }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("helper_ambiguous", .objs = objs);
