// SPDX-License-Identifier: MIT
/*
 * patch_buildid_wrong.so - "buildid_fix": a compute() fix pinned to a build-id no
 * target has: must be refused before anything is touched.
 */
#include <ulp/patch.h>

static int new_compute(int x)
{
	return x * 3;
}

static struct ulp_func funcs[] = { { .old_name = "compute", .new_func = new_compute }, {} };

static struct ulp_object objs[] = {
	{ .name = NULL, .funcs = funcs, .build_id = "0123456789abcdef0123456789abcdef01234567" }, {}
};

ULP_PATCH("buildid_fix", .objs = objs);
