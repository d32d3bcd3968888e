// SPDX-License-Identifier: MIT
/*
 * patch_state_low.so - "state_low": klp_hot_func, state 1 version 1: older
 * than state_a's, so refused while state_a is installed (integration.states).
 */
#include "patch_state_common.h"

static int state_low_hot_func(int x)
{
	return x + 100;
}

static struct ulp_func funcs[] = { { .old_name = "klp_hot_func", .new_func = state_low_hot_func },
				   {} };
static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs, .callbacks = STATE_CALLBACKS },
				    {} };
static struct ulp_state states[] = { { .id = STATE_ID, .version = 1 }, {} };

ULP_PATCH("state_low", .objs = objs, .states = states);
