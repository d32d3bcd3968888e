// SPDX-License-Identifier: MIT
/*
 * patch_unknown.so - "unknown_fix": replaces a function the target does not
 * have: must be refused.
 */
#include <ulp/patch.h>

static int new_function(int x)
{
	return x;
}

static struct ulp_func funcs[] = { { .old_name = "no_such_function", .new_func = new_function },
				   {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("unknown_fix", .objs = objs);
