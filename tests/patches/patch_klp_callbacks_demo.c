// SPDX-License-Identifier: MIT
/*
 * patch_klp_callbacks_demo.so - "klp_callbacks_demo": the kernel's
 * samples/livepatch/livepatch-callbacks-demo.c (selftest
 * test_klp_callbacks_demo) for ulp, patching tests/targets/klp_target.c and
 * the libraries it dlopen()s.
 *
 * Objects, each with all four callbacks, which log exactly like the kernel
 * sample (through ulp_log(), so as "klp_callbacks_demo: <text>"):
 *
 *   main            klp_main_func   -> "main:patched"
 *   libklp_mod.so   klp_mod_func    -> "mod:patched"
 *   libklp_busy.so  busy_work_func  -> returns at once, never blocks; logs
 *                                      "patched_busy_work_func" like the
 *                                      sample's patched_work_func
 *
 *   pre_patch_callback: <ulp_object_describe(obj)>
 *   post_patch_callback: ...   pre_unpatch_callback: ...
 *   post_unpatch_callback: ...
 *
 * pre_patch's return value (the kernel sample's pre_patch_ret module
 * parameter) can be changed at any time: every pre_patch call reads it from
 * the file named by the environment variable ULP_DEMO_PRE_PATCH_RET of the
 * TARGET process (decimal, e.g. "-19" for -ENODEV).  No variable, no file,
 * or an empty file: 0.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <ulp/patch.h>

static int pre_patch_ret(void)
{
	const char *path = getenv("ULP_DEMO_PRE_PATCH_RET");
	char buf[32];
	ssize_t n;
	int fd;

	if (!path || !*path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (int)strtol(buf, NULL, 10);
}

static void callback_info(const char *callback, struct ulp_object *obj)
{
	ulp_log("%s: %s", callback, ulp_object_describe(obj));
}

/* Executed on object patching (pre_patch runs before any code changes). */
static int pre_patch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
	return pre_patch_ret();
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

static const char *patched_klp_main_func(void)
{
	return "main:patched";
}

static const char *patched_klp_mod_func(void)
{
	return "mod:patched";
}

static void patched_busy_work_func(int mode)
{
	(void)mode;
	ulp_log("%s", "patched_busy_work_func");
}

static struct ulp_func main_funcs[] = {
	{ .old_name = "klp_main_func", .new_func = patched_klp_main_func }, {}
};

static struct ulp_func mod_funcs[] = {
	{ .old_name = "klp_mod_func", .new_func = patched_klp_mod_func }, {}
};

static struct ulp_func busy_funcs[] = {
	{ .old_name = "busy_work_func", .new_func = patched_busy_work_func }, {}
};

#define DEMO_CALLBACKS                                                                             \
	{                                                                                          \
		.pre_patch = pre_patch_callback, .post_patch = post_patch_callback,                \
		.pre_unpatch = pre_unpatch_callback, .post_unpatch = post_unpatch_callback,        \
	}

static struct ulp_object objs[] = {
	{ .name = NULL, .funcs = main_funcs, .callbacks = DEMO_CALLBACKS },
	{ .name = "libklp_mod.so", .funcs = mod_funcs, .callbacks = DEMO_CALLBACKS },
	{ .name = "libklp_busy.so", .funcs = busy_funcs, .callbacks = DEMO_CALLBACKS },
	{}
};

ULP_PATCH("klp_callbacks_demo", .objs = objs);
