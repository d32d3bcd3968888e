// SPDX-License-Identifier: MIT
/* patch_state_a.so - "state_a": klp_main_func, state 1 version 2 (integration.states). */
#include "patch_state_common.h"

static const char *state_a_main_func(void)
{
	return "main:state-a";
}

static struct ulp_func funcs[] = { { .old_name = "klp_main_func", .new_func = state_a_main_func },
				   {} };
static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs, .callbacks = STATE_CALLBACKS },
				    {} };
static struct ulp_state states[] = { { .id = STATE_ID, .version = 2 }, {} };

ULP_PATCH("state_a", .objs = objs, .states = states);
