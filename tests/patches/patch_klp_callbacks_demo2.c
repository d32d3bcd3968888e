// SPDX-License-Identifier: MIT
/*
 * patch_klp_callbacks_demo2.so - "klp_callbacks_demo2": the kernel selftest
 * module test_klp_callbacks_demo2 for ulp (klp_callbacks.sh, the "multiple
 * livepatches" and "atomic replace" tests).
 *
 * One object, main, with all four callbacks and no function at all: the
 * patch exists for its callbacks, which log like those of
 * patch_klp_callbacks_demo.so (through ulp_log(), so as
 * "klp_callbacks_demo2: <callback>: main").  Applied over
 * klp_callbacks_demo as an atomic replace, it therefore leaves nothing of
 * that patch in place: klp_main_func goes back to the original.
 *
 * The kernel module takes its replace flag as a parameter; a ulp patch's
 * descriptor is read from the file, so the flag is fixed at build time:
 * this source is built twice (tests/patches/CMakeLists.txt), with the same
 * patch name, as patch_klp_callbacks_demo2.so (replace=0) and, with
 * KLP_REPLACE defined, patch_klp_callbacks_demo2_replace.so (replace=1).
 */
#include <ulp/patch.h>

#ifdef KLP_REPLACE
#define KLP_REPLACE_FLAG true
#else
#define KLP_REPLACE_FLAG false
#endif

static void callback_info(const char *callback, struct ulp_object *obj)
{
	ulp_log("%s: %s", callback, ulp_object_describe(obj));
}

/* Executed on object patching (pre_patch runs before any code changes). */
static int pre_patch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
	return 0;
}

static void post_patch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
}

static void pre_unpatch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
}

static void post_unpatch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
}

/* Empty, but not NULL: an object with neither name nor funcs ends objs[]. */
static struct ulp_func no_funcs[] = { {} };

static struct ulp_object objs[] = {
	{
		.name = NULL,
		.funcs = no_funcs,
		.callbacks = {
			.pre_patch = pre_patch_callback,
			.post_patch = post_patch_callback,
			.pre_unpatch = pre_unpatch_callback,
			.post_unpatch = post_unpatch_callback,
		},
	},
	{}
};

ULP_PATCH("klp_callbacks_demo2", .objs = objs, .replace = KLP_REPLACE_FLAG);
