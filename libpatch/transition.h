/* SPDX-License-Identifier: MIT */
/*
 * The per-thread consistency model: during a transition each thread runs
 * the version its own state byte selects, and switches to the target state
 * as soon as its own stack holds none of the functions being (un)patched.
 * There is no global "everyone is clear" check; that never converges on a
 * hot function.
 */
#ifndef ULP_TRANSITION_H
#define ULP_TRANSITION_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct ulp_process;
struct ulp_unwinder;

struct ulp_addr_range {
	uint64_t start, end; /* [start, end) */
};

struct ulp_transition {
	struct ulp_target *target;
	struct ulp_process *proc;
	struct ulp_unwinder *unw;
	unsigned char to_state; /* ULP_THREAD_PATCHED or ULP_THREAD_UNPATCHED */
	const struct ulp_addr_range *busy; /* code a thread must not be in to switch */
	size_t nr_busy;
	struct ulp_transition_stats *stats;
};

/* Runs while every thread is stopped; returns 0 or -errno (nothing applied). */
typedef int (*ulp_stopped_fn)(struct ulp_transition *tr, void *arg);

/*
 * Stop every thread at once, put each in the state opposite to_state, run
 * fn (which makes the slots reachable), let threads created from now on
 * start in to_state, and resume everyone.
 */
int ulp_transition_start(struct ulp_transition *tr, ulp_stopped_fn fn, void *arg);

/*
 * One pass over the threads not yet switched: stop each alone, unwind it,
 * switch it if its stack is clear.  Returns 1 when every thread is in
 * to_state, 0 if some remain, or -errno.
 */
int ulp_transition_try_complete(struct ulp_transition *tr);

/* Stop everyone at once, run fn (final code bytes), resume. */
int ulp_transition_finish(struct ulp_transition *tr, ulp_stopped_fn fn, void *arg);

/* Run passes until complete or timeout_ms passes (-ETIMEDOUT, message names a blocker). */
int ulp_transition_run(struct ulp_transition *tr, int timeout_ms);

#endif
