/* SPDX-License-Identifier: MIT */
#include "state.h"

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "memory.h"
#include "rt_abi.h"

static const struct ulp_patch_state_info *ulp_state_find(const struct ulp_patch_info *patch,
							 unsigned long id)
{
	for (size_t i = 0; i < patch->nr_states; i++)
		if (patch->states[i].id == id)
			return &patch->states[i];
	return NULL;
}

static bool ulp_state_compatible(const struct ulp_patch_info *patch,
				 const struct ulp_patch_state_info *old)
{
	const struct ulp_patch_state_info *state = ulp_state_find(patch, old->id);

	/* a cumulative patch must handle every state already modified */
	if (!state)
		return !patch->replace;
	return state->version >= old->version;
}

bool ulp_patch_states_compatible(const struct ulp_patch_info *patch,
				 const struct ulp_patch_info *const *installed, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		for (size_t s = 0; s < installed[i]->nr_states; s++)
			if (!ulp_state_compatible(patch, &installed[i]->states[s]))
				return false;
	return true;
}

int ulp_registry_publish(struct ulp_target *t, struct ulp_process *p,
			 const struct ulp_applied_patch *in_transition)
{
	uint64_t desc[ULP_RT_MAX_PATCHES] = { 0 };
	uint32_t nr = 0, index = UINT32_MAX;
	int ret;

	if (!t->rt_info)
		return 0;
	for (size_t i = 0; i < t->nr_patches && nr < ULP_RT_MAX_PATCHES; i++) {
		const struct ulp_applied_patch *ap = t->patches[i];

		if (ap == in_transition)
			index = nr;
		desc[nr++] = ap->bias + ap->info->desc;
	}
	if (in_transition && index == UINT32_MAX && nr < ULP_RT_MAX_PATCHES) {
		index = nr;
		desc[nr++] = in_transition->bias + in_transition->info->desc;
	}
	/* the count last: the runtime reads the count, then that many entries */
	ret = ulp_mem_write(p, t->rt_info + offsetof(struct ulp_rt_info, patches), desc,
			    sizeof(desc));
	if (ret == 0)
		ret = ulp_mem_write(p, t->rt_info + offsetof(struct ulp_rt_info, transition_patch),
				    &index, sizeof(index));
	if (ret == 0)
		ret = ulp_mem_write(p, t->rt_info + offsetof(struct ulp_rt_info, nr_patches), &nr,
				    sizeof(nr));
	return ret;
}
