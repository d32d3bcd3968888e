/* SPDX-License-Identifier: MIT */
/*
 * Remote stack unwinding with libunwind (.eh_frame; no frame pointers
 * needed), fed by our own accessors: memory is read in page-sized blocks
 * with process_vm_readv, registers come from those already fetched at the
 * stop, and unwind tables are found through a cache of the target's
 * mappings and of each object's .eh_frame_hdr, read from the target's
 * memory.  A warm frame costs a small fraction of a microsecond.
 *
 * What is cached across unwinds (mappings, object headers, unwind tables,
 * libunwind's per-ip register states) describes code, which patching
 * changes: ulp_unwinder_invalidate() forgets it all.  Stack contents are
 * never reused from one ulp_unwind_thread() call to the next.
 */
#ifndef ULP_UNWIND_H
#define ULP_UNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct ulp_unwinder;

int ulp_unwinder_create(pid_t pid, struct ulp_unwinder **out);
void ulp_unwinder_destroy(struct ulp_unwinder *u);

/*
 * Forget everything cached about the target's code and mappings.  Call it
 * whenever objects may have been loaded, unloaded or patched since the last
 * unwind, e.g. at the start of every transition.  Cheap: the caches refill
 * on the next unwinds.
 */
void ulp_unwinder_invalidate(struct ulp_unwinder *u);

/*
 * Unwind a stopped thread whose registers are regs.  ips[0] is the current
 * rip; the others are return addresses.  Returns 0 when the walk reached
 * the outermost frame, -EAGAIN if it stopped early (unreliable stack: the
 * caller must treat it as "cannot prove safe"), or another -errno.
 */
int ulp_unwind_thread(struct ulp_unwinder *u, pid_t tid, const struct user_regs_struct *regs,
		      uint64_t *ips, size_t max, size_t *nr);

/* Counters since ulp_unwinder_create, for tests and benchmarks. */
struct ulp_unwind_stats {
	uint64_t unwinds; /* ulp_unwind_thread calls */
	uint64_t maps_reads; /* /proc/PID/maps parsed */
	uint64_t page_reads; /* process_vm_readv calls */
	uint64_t table_lookups; /* procedures found through an .eh_frame_hdr table */
	uint64_t fallback_lookups; /* left to libunwind-ptrace's own lookup */
};

void ulp_unwinder_get_stats(const struct ulp_unwinder *u, struct ulp_unwind_stats *out);

#endif
