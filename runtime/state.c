/* SPDX-License-Identifier: MIT */
/*
 * System states seen from a patch (the kernel's klp_get_state and
 * klp_get_prev_state).  ulpd keeps the list of installed patches and the one
 * in transition in ulp_rt_info (libpatch/state.c).
 */
#include <stdint.h>

#include <ulp/patch.h>

#include "runtime.h"

ULP_RT_EXPORT struct ulp_state *ulp_get_state(struct ulp_patch *patch, unsigned long id)
{
	for (struct ulp_state *s = patch ? patch->states : NULL; s && s->id; s++)
		if (s->id == id)
			return s;
	return NULL;
}

ULP_RT_EXPORT struct ulp_state *ulp_get_prev_state(unsigned long id)
{
	uint32_t nr = __atomic_load_n(&ulp_rt_info.nr_patches, __ATOMIC_ACQUIRE);
	uint32_t in_transition = __atomic_load_n(&ulp_rt_info.transition_patch, __ATOMIC_RELAXED);
	struct ulp_state *last = NULL;

	/* only meaningful while a patch is in transition, as in the kernel */
	if (in_transition >= nr || nr > ULP_RT_MAX_PATCHES)
		return NULL;
	for (uint32_t i = 0; i < in_transition; i++) {
		struct ulp_state *s =
			ulp_get_state((struct ulp_patch *)(uintptr_t)ulp_rt_info.patches[i], id);

		if (s)
			last = s;
	}
	return last;
}
