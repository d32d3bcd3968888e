// SPDX-License-Identifier: MIT
/*
 * patch_helper_pos2.so - "helper_fix": the second static helper() (sympos 2,
 * from helper2.c: x * 100) returns x * 7; the first (x * 10) is untouched.
 */
#include <ulp/patch.h>

static int new_helper(int x)
{
	return x * 7;
}

static struct ulp_func funcs[] = {
	{ .old_name = "helper", .new_func = new_helper, .old_sympos = 2 }, {}
};

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("helper_fix", .objs = objs);
