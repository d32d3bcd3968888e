/* SPDX-License-Identifier: MIT */
/*
 * Visiting threads a few at a time: each is interrupted, looked at (and
 * maybe moved) while stopped, and resumed at once.  Every thread is stopped
 * only for its own visit and those of the few stopped with it, never while
 * all the others are brought to a stop.
 */
#ifndef ULP_VISIT_H
#define ULP_VISIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ulp_process;
struct ulp_thread;

struct ulp_addr_range {
	uint64_t start, end; /* [start, end) */
};

struct ulp_visit {
	/*
	 * Runs with th stopped and th->regs read.  0: done with th; -EAGAIN:
	 * visit it again in a later pass; another -errno ends the visit.
	 */
	int (*fn)(struct ulp_process *p, struct ulp_thread *th, void *arg);
	void *arg;
	/*
	 * When set, a thread asleep in the kernel with its user pc outside
	 * these ranges needs no stop: it can only resume there.
	 */
	const struct ulp_addr_range *ranges;
	size_t nr_ranges;
};

/*
 * One pass over tids[0..*nr).  On return tids[0..*nr) holds the threads
 * still to visit: those fn asked for again and those not reached before
 * deadline_us.  Returns 0 or the error fn returned.
 */
int ulp_visit_pass(struct ulp_process *p, pid_t *tids, size_t *nr, const struct ulp_visit *v,
		   uint64_t deadline_us);

/* Visit every live thread until fn is done with each; -ETIMEDOUT after timeout_ms. */
int ulp_visit_all(struct ulp_process *p, const struct ulp_visit *v, int timeout_ms);

/* Is addr in one of ranges[0..nr)? */
bool ulp_addr_in_ranges(const struct ulp_addr_range *ranges, size_t nr, uint64_t addr);

#endif
