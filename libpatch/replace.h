/* SPDX-License-Identifier: MIT */
/*
 * Atomic replace: a cumulative patch (.replace = true) takes the place of
 * every patch applied before it, as the kernel's klp_add_nops(),
 * klp_unpatch_replaced_patches() and klp_discard_nops() do.  A function the
 * older patches changed and the new one does not gets a no-op in the new
 * patch, which leads back to the original during the transition; once the
 * transition completes the older patches leave silently (no callbacks, no
 * event-log line) and the no-ops go with them.
 */
#ifndef ULP_REPLACE_H
#define ULP_REPLACE_H

#include <stddef.h>

#include "patch_file.h"

struct ulp_target;
struct ulp_process;
struct ulp_applied_patch;

/*
 * The no-ops a cumulative patch needs against the patches installed in t:
 * one object per object name, each function once (by name and sympos).
 */
int ulp_replace_nops(const struct ulp_target *t, const struct ulp_patch_info *info,
		     struct ulp_patch_object_info **out, size_t *nr);
void ulp_nop_infos_free(struct ulp_patch_object_info *nops, size_t nr);

/*
 * ap, a cumulative patch, has completed its patching transition: the
 * patches under it leave (unloaded from the target unless a thread may
 * still run their code) and its no-ops are dropped.
 */
void ulp_replace_complete(struct ulp_target *t, struct ulp_process *p,
			  struct ulp_applied_patch *ap);

#endif
