// SPDX-License-Identifier: MIT
/*
 * patch_klp_state.h - the code of the kernel selftest modules
 * test_klp_state.ko, test_klp_state2.ko and test_klp_state3.ko for ulp
 * (integration.klp_state), each a cumulative patch (.replace) changing
 * system state 1; patch_klp_state*.c set KLP_STATE_NAME and
 * CONSOLE_LOGLEVEL_STATE_VERSION and include it.
 *
 * The kernel's console_loglevel is klp_counter, a file-static variable of
 * tests/targets/klp_target.c reached through a struct ulp_symbol_ref: the
 * state has to live in the target, not in a patch, for a later cumulative
 * patch to take the change over once this one is unloaded, and the target
 * shows it ("count" answers klp_counter + 1).  post_patch saves it in the
 * state's data and sets it to 15 (CONSOLE_LOGLEVEL_MOTORMOUTH),
 * pre_unpatch puts the saved value back.
 *
 * Version 2 can take the change over from an installed patch and hand it
 * back: when ulp_get_prev_state() finds the state of a patch installed
 * before, the space and the saved value are that patch's, nothing is
 * allocated, saved, restored or freed again.  Version 1 cannot, so a patch
 * with version 2 must never be replaced by it.
 *
 * The object "main" has no functions, like the kernel modules' vmlinux
 * object: the patch exists for its callbacks and its state.
 */
#include <errno.h>
#include <stdlib.h>
#include <ulp/patch.h>

#define CONSOLE_LOGLEVEL_STATE 1
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

/* Version 1 (test_klp_state) knows no patch before it to take over from. */
static struct ulp_state *prev_loglevel_state(void)
{
#if CONSOLE_LOGLEVEL_STATE_VERSION >= 2
	return ulp_get_prev_state(CONSOLE_LOGLEVEL_STATE);
#else
	return NULL;
#endif
}

static int allocate_loglevel_state(void)
{
	struct ulp_state *state;

	if (prev_loglevel_state()) {
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
	prev = prev_loglevel_state();
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

	if (prev_loglevel_state()) {
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

	if (prev_loglevel_state()) {
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
