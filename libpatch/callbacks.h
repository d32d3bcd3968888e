/* SPDX-License-Identifier: MIT */
/*
 * Running a patch's per-object callbacks (struct ulp_callbacks) in the
 * target, and the kernel's pairing rules: post_unpatch runs only for an
 * object whose pre_patch ran and succeeded.
 */
#ifndef ULP_CALLBACKS_H
#define ULP_CALLBACKS_H

#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

struct ulp_process;

enum ulp_callback {
	ULP_PRE_PATCH,
	ULP_POST_PATCH,
	ULP_PRE_UNPATCH,
	ULP_POST_UNPATCH,
};

/*
 * Where callbacks run: on the runtime's worker thread, or, for objects
 * coming and going, on the thread in the loader hook, which runs them when
 * asked over the hook channel (rt_abi.h).
 */
struct ulp_callback_ctx {
	struct ulp_target *target;
	struct ulp_process *proc;
	int hook_fd; /* -1: the runtime's worker */
};

/*
 * Run pre_patch for os (state: enum ulp_object_state) if it has one and
 * record whether post_unpatch is owed.  Returns what the callback returned
 * (0 or a negative errno), or ulp's own -errno if it could not run it.
 */
int ulp_callback_pre_patch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			   struct ulp_applied_object *os, int state);
void ulp_callback_post_patch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			     struct ulp_applied_object *os, int state);
void ulp_callback_pre_unpatch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			      struct ulp_applied_object *os, int state);
/* Only if pre_patch succeeded for os; clears the debt. */
void ulp_callback_post_unpatch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			       struct ulp_applied_object *os, int state);

#endif
