/* SPDX-License-Identifier: MIT */
/*
 * Changing code that threads are running, without stopping them all: the
 * kernel's text_poke_bp() protocol in userspace.  An int3 goes on each
 * site's first byte, every CPU is serialised (membarrier SYNC_CORE, run by
 * the runtime's worker), the other bytes are written, CPUs serialised
 * again, the first byte written, and serialised a last time.  A thread that
 * reaches an int3 meanwhile traps to ulp and is sent on to where the new
 * instruction leads, as the kernel's int3 handler does.  Only threads that
 * hit a site stop, each for as long as ulp takes to see it.
 *
 * When the runtime cannot serialise (no membarrier SYNC_CORE) or
 * ULP_POKE_STOP_ALL is set in ulpd's environment, every thread is stopped
 * at once around the writes instead.
 */
#ifndef ULP_POKE_H
#define ULP_POKE_H

#include <stddef.h>
#include <stdint.h>

#include "visit.h"

#define ULP_POKE_MAX 32

struct ulp_target;
struct ulp_process;

struct ulp_poke {
	uint64_t addr;
	uint8_t bytes[ULP_POKE_MAX];
	size_t len;
	/* where the new instruction leads: threads trapped meanwhile go there */
	uint64_t emulate_to;
};

/*
 * Write every poke.  before (may be NULL) visits each thread once no thread
 * can enter a site any more and before any site changes beyond its first
 * byte: the place to move threads out of bytes about to change.  If it
 * fails, every site is put back as it was and its error returned.
 */
int ulp_text_poke(struct ulp_target *t, struct ulp_process *p, const struct ulp_poke *pokes,
		  size_t n, const struct ulp_visit *before);

/*
 * int3s a ulpd that died during a change left on the sites it guarded
 * (runtime/trap_guard.c): where the rest of a jump is written, its first
 * byte too.  Returns how many sites still hold an int3 (the guard must
 * stay on), or -1 if they cannot be read.
 */
int ulp_trap_sites_repair(struct ulp_target *t, struct ulp_process *p);
/* The runtime's SIGTRAP guard off, as a ulpd that died during a change left it. */
void ulp_trap_guard_off(struct ulp_target *t, struct ulp_process *p);

#endif
