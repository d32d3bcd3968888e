/* SPDX-License-Identifier: MIT */
/*
 * The code side of one patch in one process (patch.c): what core.c calls to
 * validate a patch, load it, build its slots and point function entries
 * where a transition needs them.  Every function takes an attached process.
 */
#ifndef ULP_LIBPATCH_PATCH_H
#define ULP_LIBPATCH_PATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "visit.h"

struct ulp_process;
struct ulp_symbols;

#define ULP_FOR_EACH_FUNC(ap, fs)                                                                  \
	for (size_t _o = 0; _o < (ap)->nr_objs; _o++)                                              \
		for (struct ulp_applied_func *fs = (ap)->objs[_o].funcs;                           \
		     fs && fs < (ap)->objs[_o].funcs + (ap)->objs[_o].nr_funcs; fs++)

/* Where an entry jump leads, or the original bytes. */
enum ulp_entry_to {
	ULP_ENTRY_PATCHING, /* the slot's patching dispatch */
	ULP_ENTRY_UNPATCHING, /* the slot's unpatching dispatch */
	ULP_ENTRY_STEADY, /* the new function (directly if in reach) */
	ULP_ENTRY_ORIGINAL, /* the function's own bytes */
	ULP_ENTRY_BELOW, /* the version below in the function's stack, or the original */
};

/* "main" for the main program, else the object's name. */
const char *ulp_obj_name(const struct ulp_patch_object_info *o);

/*
 * Resolve and check every function of every loaded object (a dry run of
 * each prologue relocation included); nothing in the target changes.  On
 * success *out owns info.
 */
int ulp_patch_prepare(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms,
		      struct ulp_patch_info *info, struct ulp_applied_patch **out);
/* The same for one object that has just been mapped (dlopen). */
int ulp_object_prepare(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms,
		       struct ulp_applied_patch *ap, struct ulp_applied_object *os);
/*
 * A function's prologue again (recovery.c): its code as the process has
 * it, with orig, the original bytes, at poff, for a trampoline at its slot.
 */
int ulp_func_prologue_rebuild(struct ulp_process *p, struct ulp_applied_func *fs, uint64_t poff,
			      const uint8_t *orig, size_t orig_len);
/* Forget the object's functions, taking them off their functions' stacks. */
void ulp_object_forget_funcs(struct ulp_applied_object *os);
/* Take one version off its function's stack (ulp's view only). */
void ulp_func_unlink(struct ulp_applied_func *fs);

size_t ulp_patch_nr_funcs(const struct ulp_applied_patch *ap);

/* dlopen the patch in the target near the code it replaces; sets handle and bias. */
int ulp_load_into_target(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap,
			 const char *path);
int ulp_unload_from_target(struct ulp_target *t, struct ulp_process *p,
			   struct ulp_applied_patch *ap);
/* Fill the patch's symbol references (resolved by ulp_patch_prepare) once it is loaded. */
int ulp_symrefs_write(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap);

/*
 * Slots (dispatch for ap->gen, trampoline) for every function not given one
 * yet; ulp_func.old_func set to the trampoline.  Nothing reaches them yet.
 */
int ulp_build_slots(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap);
void ulp_release_slots(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap);
void ulp_object_release_slots(struct ulp_target *t, struct ulp_process *p,
			      struct ulp_applied_object *os);
/*
 * ap is leaving the functions' stacks: where a newer version lies over one
 * of its functions, that version's slot now sends threads not switched to
 * it to the version under ap's (ulp's own view changes when ap is freed).
 * Only while that newer version is steady, so no thread reads the slot's
 * pointer as it changes.
 */
int ulp_stack_bridge(struct ulp_process *p, struct ulp_applied_patch *ap);
/* Write the unpatching dispatch of every slot for generation gen. */
int ulp_unpatch_dispatch_write(struct ulp_target *t, struct ulp_process *p,
			       struct ulp_applied_patch *ap, unsigned char gen);

/*
 * Point every entry of ap to `to` while threads run (poke.h).  Going to the
 * patching dispatch first moves threads out of the bytes about to be
 * displaced; if that fails, nothing changed.
 */
int ulp_entries_poke(struct ulp_target *t, struct ulp_process *p, struct ulp_applied_patch *ap,
		     enum ulp_entry_to to);
/* Does every entry of ap lead to `to` already? */
bool ulp_entries_are(struct ulp_process *p, struct ulp_applied_patch *ap, enum ulp_entry_to to);
/*
 * The same for the entries of one object no thread can be running yet (it
 * is being loaded): plain writes.
 */
int ulp_object_entries_write(struct ulp_process *p, struct ulp_applied_object *os,
			     enum ulp_entry_to to);

/* After the original bytes are back: wait for threads inside slots to leave. */
int ulp_threads_leave_slots(struct ulp_target *t, struct ulp_process *p,
			    struct ulp_applied_patch *ap);

/*
 * Code a thread must not be running to switch: the old functions (and
 * trampolines) when patching, the new ones when unpatching.
 */
int ulp_busy_ranges(struct ulp_applied_patch *ap, bool patching, struct ulp_addr_range **out,
		    size_t *nr);

#endif
