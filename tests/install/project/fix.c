/* SPDX-License-Identifier: MIT */
/* A minimal live patch: replaces compute() in the main program. */
#include <ulp/patch.h>

static int new_compute(int x)
{
	return x * 3;
}

static int pre_patch(struct ulp_object *obj)
{
	ulp_log("pre_patch_callback: %s", ulp_object_describe(obj));
	return 0;
}

static struct ulp_func main_funcs[] = {
	{ .old_name = "compute", .new_func = new_compute },
	{},
};

static struct ulp_object objs[] = {
	{ .name = NULL, .funcs = main_funcs, .callbacks = { .pre_patch = pre_patch } },
	{},
};

ULP_PATCH("install_test", .objs = objs);
