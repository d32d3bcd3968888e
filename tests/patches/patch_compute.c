// SPDX-License-Identifier: MIT
/*
 * patch_compute.so - "compute_fix": compute(x) returns x * 3 instead of
 * x + 1 (so compute(5) goes from 6 to 15).  Logs from its callbacks like
 * the example in DESIGN.md.
 */
#include <ulp/patch.h>

/* Another build of the same patch (patch_compute_other.so) differs here. */
#ifndef COMPUTE_FIX_FACTOR
#define COMPUTE_FIX_FACTOR 3
#endif

static int new_compute(int x)
{
	return x * COMPUTE_FIX_FACTOR;
}

static int pre_patch(struct ulp_object *obj)
{
	ulp_log("pre_patch_callback: %s", ulp_object_describe(obj));
	return 0;
}

static void post_patch(struct ulp_object *obj)
{
	ulp_log("post_patch_callback: %s", ulp_object_describe(obj));
}

static void pre_unpatch(struct ulp_object *obj)
{
	ulp_log("pre_unpatch_callback: %s", ulp_object_describe(obj));
}

static void post_unpatch(struct ulp_object *obj)
{
	ulp_log("post_unpatch_callback: %s", ulp_object_describe(obj));
}

static struct ulp_func main_funcs[] = { { .old_name = "compute", .new_func = new_compute }, {} };

static struct ulp_object objs[] = { { .name = NULL,
				      .funcs = main_funcs,
				      .callbacks = { .pre_patch = pre_patch,
						     .post_patch = post_patch,
						     .pre_unpatch = pre_unpatch,
						     .post_unpatch = post_unpatch } },
				    {} };

ULP_PATCH("compute_fix", .objs = objs);
