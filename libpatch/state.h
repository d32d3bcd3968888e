/* SPDX-License-Identifier: MIT */
/*
 * System states (struct ulp_state, seed 002): the version rules a new patch
 * must meet against the patches already installed, and the registry the
 * runtime answers ulp_get_prev_state() from.
 */
#ifndef ULP_STATE_H
#define ULP_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "patch_file.h"

struct ulp_target;
struct ulp_process;
struct ulp_applied_patch;

/*
 * The kernel's klp_is_patch_compatible(): every state an installed patch
 * modified must be handled by the new one at the same or a higher version,
 * and a cumulative (replace) patch must handle all of them; new states are
 * always fine.
 */
bool ulp_patch_states_compatible(const struct ulp_patch_info *patch,
				 const struct ulp_patch_info *const *installed, size_t nr);

/*
 * Write the installed patches' descriptors, in stack order, and which one
 * is in transition (in_transition, appended if not installed yet; NULL:
 * none) into the runtime (ulp_rt_info.patches).  As the kernel's
 * klp_transition_patch, a patch counts as in transition from before its
 * pre_(un)patch callbacks to after its post_(un)patch ones.
 */
int ulp_registry_publish(struct ulp_target *t, struct ulp_process *p,
			 const struct ulp_applied_patch *in_transition);

#endif
