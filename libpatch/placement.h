/* SPDX-License-Identifier: MIT */
/*
 * Where a patch is loaded in a target.  A plain dlopen() puts it next to
 * the shared libraries, terabytes away from a PIE executable; a patched
 * call then needs an indirect jump through a slot and runs code far from
 * its caller, which costs over a nanosecond per call (docs/benchmarks.md).
 * Loaded within +-2 GiB of the functions it replaces, a patch is reached
 * by the entry's own jmp rel32.
 *
 * glibc's loader maps an ET_DYN object where mmap(NULL) puts it: in the
 * usual top-down layout, the highest free gap below mmap_base that fits.
 * The plan therefore lists every free gap above the chosen spot, which the
 * runtime fills with PROT_NONE reservations around the dlopen() and
 * removes afterwards.  Nothing depends on the plan working: ulp checks
 * where the patch landed and uses the slot when a function is out of reach.
 */
#ifndef ULP_PLACEMENT_H
#define ULP_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "procfs.h"
#include "rt_abi.h"

#define ULP_PLACEMENT_MAX_RESERVE ULP_RT_RESERVE_MAX
/* Room left above the heap so that brk can still grow. */
#define ULP_BRK_ROOM (512ull << 20)

struct ulp_placement {
	uint64_t at; /* where the patch should land */
	size_t nr_reserve;
	uint64_t reserve[ULP_PLACEMENT_MAX_RESERVE][2]; /* start, length */
};

/*
 * Plan a mapping of len bytes within reach of [lo, hi) among the areas of
 * maps (address order).  The main thread's stack keeps stack_room bytes
 * below it unreserved so it can grow, and the heap keeps heap_room above it.
 * -ENOSPC when no free spot is in reach, -E2BIG when too many gaps would
 * have to be reserved.
 */
int ulp_placement_plan(const struct ulp_map_area *maps, size_t nr, uint64_t lo, uint64_t hi,
		       uint64_t len, uint64_t stack_room, uint64_t heap_room,
		       struct ulp_placement *out);

/* Bytes the loader maps for the ELF object at path (its PT_LOAD span plus alignment slack). */
int ulp_placement_map_size(const char *path, uint64_t *len);

#endif
