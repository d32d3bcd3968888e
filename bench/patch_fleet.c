// SPDX-License-Identifier: MIT
/* patch_fleet.so - "fleet_fix": fleet_func(x) = x * 3 (bench/run_fleet.sh). */
#include <ulp/patch.h>

static int new_fleet_func(int x)
{
	volatile int y = x;

	return y * 3;
}

static struct ulp_func funcs[] = { { .old_name = "fleet_func", .new_func = new_fleet_func }, {} };
static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("fleet_fix", .objs = objs);
