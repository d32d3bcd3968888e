// SPDX-License-Identifier: MIT
/*
 * patch_klp_state2.so - "test_klp_state2": the kernel selftest module
 * test_klp_state2.ko for ulp (integration.klp_state).  Like
 * patch_klp_state.c (read its header: klp_counter of the target stands in
 * for console_loglevel, no functions), but the state's version 2 can take
 * the change over from an installed patch and hand it back: when
 * ulp_get_prev_state() finds the state of a patch installed before, the
 * space and the saved value are that patch's, nothing is allocated, saved,
 * restored or freed again.
 *
 * patch_klp_state3.c builds the same code as "test_klp_state3"
 * (KLP_STATE_NAME), as the kernel's test_klp_state3.c includes
 * test_klp_state2.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <ulp/patch.h>

#ifndef KLP_STATE_NAME
#define KLP_STATE_NAME "test_klp_state2"
#endif

#define CONSOLE_LOGLEVEL_STATE 1
#define CONSOLE_LOGLEVEL_STATE_VERSION 2
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
	struct ulp_state *state;

	if (ulp_get_prev_state(CONSOLE_LOGLEVEL_STATE)) {
		ulp_log("%s: space to store console_loglevel already allocated", __func__);
		return 0;
	}
	state = own_loglevel_state();
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
	struct ulp_state *state = own_loglevel_state(), *prev;

	if (!state)
		return;
	prev = ulp_get_prev_state(CONSOLE_LOGLEVEL_STATE);
	if (prev) {
		/* the saved value is the one from before the first patch */
		ulp_log("%s: taking over the console_loglevel change", __func__);
		state->data = prev->data;
		return;
	}
	ulp_log("%s: fixing console_loglevel", __func__);
	*(int *)state->data = *console_loglevel;
	*console_loglevel = CONSOLE_LOGLEVEL_MOTORMOUTH;
}

static void restore_console_loglevel(void)
{
	struct ulp_state *state;

	if (ulp_get_prev_state(CONSOLE_LOGLEVEL_STATE)) {
		ulp_log("%s: passing the console_loglevel change back to the old livepatch",
			__func__);
		return;
	}
	state = own_loglevel_state();
	if (!state)
		return;
	ulp_log("%s: restoring console_loglevel", __func__);
	*console_loglevel = *(int *)state->data;
}

static void free_loglevel_state(void)
{
	struct ulp_state *state;

	if (ulp_get_prev_state(CONSOLE_LOGLEVEL_STATE)) {
		ulp_log("%s: keeping space to store console_loglevel", __func__);
		return;
	}
	state = own_loglevel_state();
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

ULP_PATCH(KLP_STATE_NAME, .objs = objs, .states = states, .replace = true, .symbols = symbols);
