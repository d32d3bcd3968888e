// SPDX-License-Identifier: MIT
/*
 * patch_compute_v2.so - "compute_fix_v2": compute(x) returns x * 4 (compute(5) = 20).
 * Stacks on top of compute_fix.
 */
#include <ulp/patch.h>

static int new_compute(int x)
{
	return x * 4;
}

static struct ulp_func funcs[] = { { .old_name = "compute", .new_func = new_compute }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("compute_fix_v2", .objs = objs);
