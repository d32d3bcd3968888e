// SPDX-License-Identifier: MIT
/*
 * patch_klp_state.so - "test_klp_state": the kernel selftest module
 * test_klp_state.ko (tools/testing/selftests/livepatch/test_modules) for
 * ulp, used by integration.klp_state.  A cumulative patch (.replace) that
 * changes a system state, id 1 version 1: a version that cannot hand its
 * change over to a later patch, so a patch with version 2 must never be
 * replaced by it.
 *
 * The kernel's console_loglevel is klp_counter, a file-static variable of
 * tests/targets/klp_target.c reached through a struct ulp_symbol_ref: the
 * state has to live in the target, not in a patch, for a later cumulative
 * patch to take the change over once this one is unloaded, and the target
 * shows it ("count" answers klp_counter + 1).  post_patch saves it in the
 * state's data and sets it to 15 (CONSOLE_LOGLEVEL_MOTORMOUTH),
 * pre_unpatch puts the saved value back.
 *
 * The object "main" has no functions, like the kernel module's vmlinux
 * object: the patch exists for its callbacks and its state.
 */
#include <errno.h>
#include <stdlib.h>
#include <ulp/patch.h>

#define CONSOLE_LOGLEVEL_STATE 1
#define CONSOLE_LOGLEVEL_STATE_VERSION 1
#define CONSOLE_LOGLEVEL_MOTORMOUTH 15

static int *console_loglevel;

static void callback_info(const char *callback, struct ulp_object *obj)
{
	ulp_log("%s: %s", callback, ulp_object_describe(obj));
}

static struct ulp_state *own_loglevel_state(void)
{
	return ulp_get_state(&ulp_patch_descriptor, CONSOLE_LOGLEVEL_STATE);
}

static int allocate_loglevel_state(void)
{
	struct ulp_state *state = own_loglevel_state();

	if (!state)
		return -EINVAL;
	state->data = calloc(1, sizeof(*console_loglevel));
	if (!state->data)
		return -ENOMEM;
	ulp_log("%s: allocating space to store console_loglevel", __func__);
	return 0;
}

static void fix_console_loglevel(void)
{
	struct ulp_state *state = own_loglevel_state();

	if (!state)
		return;
	ulp_log("%s: fixing console_loglevel", __func__);
	*(int *)state->data = *console_loglevel;
	*console_loglevel = CONSOLE_LOGLEVEL_MOTORMOUTH;
}

static void restore_console_loglevel(void)
{
	struct ulp_state *state = own_loglevel_state();

	if (!state)
		return;
	ulp_log("%s: restoring console_loglevel", __func__);
	*console_loglevel = *(int *)state->data;
}

static void free_loglevel_state(void)
{
	struct ulp_state *state = own_loglevel_state();

	if (!state)
		return;
	ulp_log("%s: freeing space for the stored console_loglevel", __func__);
	free(state->data);
}

static int pre_patch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
	return allocate_loglevel_state();
}

static void post_patch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
	fix_console_loglevel();
}

static void pre_unpatch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
	restore_console_loglevel();
}

static void post_unpatch_callback(struct ulp_object *obj)
{
	callback_info(__func__, obj);
	free_loglevel_state();
}

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

static struct ulp_state states[] = {
	{ .id = CONSOLE_LOGLEVEL_STATE, .version = CONSOLE_LOGLEVEL_STATE_VERSION }, {}
};

static struct ulp_symbol_ref symbols[] = {
	{ .object = "main", .name = "klp_counter", .addr = (void **)&console_loglevel }, {}
};

ULP_PATCH("test_klp_state", .objs = objs, .states = states, .replace = true, .symbols = symbols);
