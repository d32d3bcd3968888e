// SPDX-License-Identifier: MIT
/*
 * patch_klp_atomic_replace.so - "klp_atomic_replace": the kernel selftest
 * module test_klp_atomic_replace for ulp (klp_livepatch.sh, klp_sysfs.sh).
 * Replaces, without callbacks:
 *
 *   main  klp_main2_func  -> "main2:livepatched"
 *
 * (tests/targets/klp_target.c), a function patch_klp_livepatch.so leaves
 * alone, as the kernel module patches meminfo_proc_show while
 * test_klp_livepatch patches cmdline_proc_show.
 *
 * The kernel module takes its replace flag as a parameter; a ulp patch's
 * descriptor is read from the file, so the flag is fixed at build time:
 * this source is built twice (tests/patches/CMakeLists.txt), with the same
 * patch name, as patch_klp_atomic_replace.so (replace=0) and, with
 * KLP_REPLACE defined, patch_klp_atomic_replace_replace.so (replace=1).
 */
#include <ulp/patch.h>

#ifdef KLP_REPLACE
#define KLP_REPLACE_FLAG true
#else
#define KLP_REPLACE_FLAG false
#endif

static const char *livepatch_klp_main2_func(void)
{
	return "main2:livepatched";
}

static struct ulp_func funcs[] = {
	{ .old_name = "klp_main2_func", .new_func = livepatch_klp_main2_func }, {}
};

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("klp_atomic_replace", .objs = objs, .replace = KLP_REPLACE_FLAG);
