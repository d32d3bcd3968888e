// SPDX-License-Identifier: MIT
/*
 * patch_state_b.so - "state_b": klp_hot_func, state 1 version 3: newer
 * than state_a's, accepted; its callbacks see state_a's as the previous
 * version (integration.states).
 */
#include "patch_state_common.h"

static int state_b_hot_func(int x)
{
	return x + 3000;
}

static struct ulp_func funcs[] = { { .old_name = "klp_hot_func", .new_func = state_b_hot_func },
				   {} };
static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs, .callbacks = STATE_CALLBACKS },
				    {} };
static struct ulp_state states[] = { { .id = STATE_ID, .version = 3 }, {} };

ULP_PATCH("state_b", .objs = objs, .states = states);
