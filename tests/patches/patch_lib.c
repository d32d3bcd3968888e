// SPDX-License-Identifier: MIT
/*
 * patch_lib.so - "lib_fix": lib_compute(x) in libulpdemo.so.1 returns x * 4
 * instead of x + 2 (lib_compute(5) goes from 7 to 20).
 */
#include <ulp/patch.h>

static int new_lib_compute(int x)
{
	return x * 4;
}

static struct ulp_func funcs[] = { { .old_name = "lib_compute", .new_func = new_lib_compute }, {} };

static struct ulp_object objs[] = { { .name = "libulpdemo.so.1", .funcs = funcs }, {} };

ULP_PATCH("lib_fix", .objs = objs);
