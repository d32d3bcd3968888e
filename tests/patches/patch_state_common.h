/* SPDX-License-Identifier: MIT */
/*
 * The callbacks of the states test patches (patch_state_*.c, for
 * integration.states): each logs the version of state 1 as the patch
 * declares it and as the patches installed before it declared it
 * (ulp_get_prev_state: only during the patch's transition).
 */
#include <ulp/patch.h>

#define STATE_ID 1

static void log_states(const char *what)
{
	struct ulp_state *own = ulp_get_state(&ulp_patch_descriptor, STATE_ID);
	struct ulp_state *prev = ulp_get_prev_state(STATE_ID);

	if (prev)
		ulp_log("%s: state %d version %u, previous version %u", what, STATE_ID,
			own ? own->version : 0, prev->version);
	else
		ulp_log("%s: state %d version %u, no previous version", what, STATE_ID,
			own ? own->version : 0);
}

static int state_pre_patch(struct ulp_object *obj)
{
	(void)obj;
	log_states("pre_patch");
	return 0;
}

static void state_post_patch(struct ulp_object *obj)
{
	(void)obj;
	log_states("post_patch");
}

static void state_pre_unpatch(struct ulp_object *obj)
{
	(void)obj;
	log_states("pre_unpatch");
}

static void state_post_unpatch(struct ulp_object *obj)
{
	(void)obj;
	log_states("post_unpatch");
}

#define STATE_CALLBACKS                                                                            \
	{                                                                                          \
		.pre_patch = state_pre_patch, .post_patch = state_post_patch,                      \
		.pre_unpatch = state_pre_unpatch, .post_unpatch = state_post_unpatch               \
	}
