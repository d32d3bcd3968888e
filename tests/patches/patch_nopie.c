// SPDX-License-Identifier: MIT
/*
 * patch_nopie.so - "compute_nopie_fix": compute(x) returns x * 3 in
 * target_nopie (fixed addresses).
 */
#include <ulp/patch.h>

static int new_compute(int x)
{
	return x * 3;
}

static struct ulp_func funcs[] = { { .old_name = "compute", .new_func = new_compute }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("compute_nopie_fix", .objs = objs);
