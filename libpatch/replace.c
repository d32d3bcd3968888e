/* SPDX-License-Identifier: MIT */
/*
 * Atomic replace (replace.h): the no-ops of a cumulative patch and the
 * departure of the patches it replaces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "patch.h"
#include "recovery.h"
#include "replace.h"

static bool ulp_same_object(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* 0 (the only one) and 1 (the first) name the same symbol, as in klp_find_func(). */
static bool ulp_same_sympos(unsigned long a, unsigned long b)
{
	return (a ? a : 1) == (b ? b : 1);
}

static bool ulp_objects_have_func(const struct ulp_patch_object_info *objs, size_t nr,
				  const char *obj, const struct ulp_patch_func_info *f)
{
	for (size_t o = 0; o < nr; o++) {
		if (!ulp_same_object(objs[o].name, obj))
			continue;
		for (size_t i = 0; i < objs[o].nr_funcs; i++)
			if (strcmp(objs[o].funcs[i].old_name, f->old_name) == 0 &&
			    ulp_same_sympos(objs[o].funcs[i].old_sympos, f->old_sympos))
				return true;
	}
	return false;
}

static int ulp_nop_add(struct ulp_patch_object_info **nops, size_t *nr, const char *obj,
		       const struct ulp_patch_func_info *f)
{
	struct ulp_patch_object_info *o = NULL;
	struct ulp_patch_func_info *funcs;

	for (size_t i = 0; i < *nr && !o; i++)
		if (ulp_same_object((*nops)[i].name, obj))
			o = &(*nops)[i];
	if (!o) {
		struct ulp_patch_object_info *n = realloc(*nops, (*nr + 1) * sizeof(*n));

		if (!n)
			return ulp_errorf(-ENOMEM, "out of memory");
		*nops = n;
		o = &n[(*nr)++];
		memset(o, 0, sizeof(*o));
		if (obj && !(o->name = strdup(obj)))
			return ulp_errorf(-ENOMEM, "out of memory");
	}
	funcs = realloc(o->funcs, (o->nr_funcs + 1) * sizeof(*funcs));
	if (!funcs)
		return ulp_errorf(-ENOMEM, "out of memory");
	o->funcs = funcs;
	funcs[o->nr_funcs] = (struct ulp_patch_func_info){ .old_sympos = f->old_sympos };
	funcs[o->nr_funcs].old_name = strdup(f->old_name);
	if (!funcs[o->nr_funcs].old_name)
		return ulp_errorf(-ENOMEM, "out of memory");
	o->nr_funcs++;
	return 0;
}

int ulp_replace_nops(const struct ulp_target *t, const struct ulp_patch_info *info,
		     struct ulp_patch_object_info **out, size_t *nr)
{
	struct ulp_patch_object_info *nops = NULL;
	size_t n = 0;
	int ret = 0;

	for (size_t i = 0; i < t->nr_patches && ret == 0; i++) {
		const struct ulp_patch_info *old = t->patches[i]->info;

		for (size_t o = 0; o < old->nr_objs && ret == 0; o++) {
			const struct ulp_patch_object_info *oo = &old->objs[o];

			for (size_t f = 0; f < oo->nr_funcs && ret == 0; f++) {
				if (ulp_objects_have_func(info->objs, info->nr_objs, oo->name,
							  &oo->funcs[f]) ||
				    ulp_objects_have_func(nops, n, oo->name, &oo->funcs[f]))
					continue;
				ret = ulp_nop_add(&nops, &n, oo->name, &oo->funcs[f]);
			}
		}
	}
	if (ret < 0) {
		ulp_nop_infos_free(nops, n);
		return ret;
	}
	*out = nops;
	*nr = n;
	return 0;
}

void ulp_nop_infos_free(struct ulp_patch_object_info *nops, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		for (size_t f = 0; f < nops[i].nr_funcs; f++)
			free(nops[i].funcs[f].old_name);
		free(nops[i].funcs);
		free(nops[i].name);
	}
	free(nops);
}

/*
 * Where ap's no-ops led, the original bytes are back (their steady entry):
 * once no thread is inside their slots, they go.
 */
static void ulp_nops_discard(struct ulp_target *t, struct ulp_process *p,
			     struct ulp_applied_patch *ap)
{
	size_t first = ap->info->nr_objs;
	struct ulp_applied_patch nops = { .info = ap->info,
					  .objs = ap->objs + first,
					  .nr_objs = ap->nr_objs - first };

	if (!nops.nr_objs)
		return;
	if (!ap->forced && ulp_threads_leave_slots(t, p, &nops) == 0)
		ulp_release_slots(t, p, &nops);
	for (size_t o = first; o < ap->nr_objs; o++) {
		ulp_object_forget_funcs(&ap->objs[o]);
		free(ap->objs[o].name);
	}
	ap->nr_objs = first;
	ulp_nop_infos_free(ap->nop_infos, ap->nr_nop_infos);
	ap->nop_infos = NULL;
	ap->nr_nop_infos = 0;
}

void ulp_replace_complete(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap)
{
	/* every patch but ap was applied before it: all are replaced */
	while (t->nr_patches && t->patches[0] != ap) {
		struct ulp_applied_patch *old = t->patches[0];

		bool bridged = ulp_stack_bridge(p, old) == 0;

		/* ap covers every function of old (a version or a no-op over each) */
		ULP_FOR_EACH_FUNC(old, fs)
		{
			if (!fs->above)
				bridged = false;
		}

		/*
		 * After a force (of the replace or of the old patch) a thread
		 * may still run the old code: it stays loaded, as the kernel
		 * keeps forced modules.  Unbridged, a slot may still lead there.
		 */
		/*
		 * Out of ulpd's saved view before it goes: a ulpd that dies
		 * now leaks it rather than unloading it twice when adopting.
		 */
		ulp_target_remove_patch_keep(t, old);
		ulp_recovery_save(t, p);
		if (bridged && !old->forced && !ap->forced &&
		    ulp_threads_leave_slots(t, p, old) == 0) {
			ulp_release_slots(t, p, old);
			ulp_unload_from_target(t, p, old);
		}
		ulp_applied_patch_destroy(old);
	}
	ulp_nops_discard(t, p, ap);
}
