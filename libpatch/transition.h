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
#include "visit.h"

struct ulp_process;
struct ulp_unwinder;

struct ulp_transition {
	struct ulp_target *target;
	struct ulp_pending_transition *pending; /* where what each thread showed is kept */
	struct ulp_process *proc;
	struct ulp_unwinder *unw;
	unsigned char to_state; /* the generation threads switch to (codegen.h) */
	const struct ulp_addr_range *busy; /* code a thread must not be in to switch */
	size_t nr_busy;
	struct ulp_transition_stats *stats;
};

/*
 * The generation a new transition tests for: one more than the one every
 * thread holds when no transition is in progress.
 */
int ulp_transition_next_gen(struct ulp_target *t, struct ulp_process *p, unsigned char *gen);

/*
 * Let threads created from now on start in to_state.  Called before the
 * dispatch becomes reachable; no thread is stopped.
 */
int ulp_transition_start(struct ulp_transition *tr);

/*
 * One pass over the threads not yet switched, a few stopped at a time
 * (visit.h): unwind each, switch it if its stack is clear.  Returns 1 when every thread is in
 * to_state, 0 if some remain, or -errno.
 */
int ulp_transition_try_complete(struct ulp_transition *tr);

/*
 * Run passes until complete (1) or budget_ms passed (0), or -errno.  Short
 * pauses between passes give blocked threads time to leave.
 */
int ulp_transition_run(struct ulp_transition *tr, int budget_ms);

/*
 * Switch every thread not in to_state without looking at its stack (the
 * kernel's klp_force_transition): each is stopped once to find its state.
 */
int ulp_transition_force_all(struct ulp_transition *tr);

/*
 * Tell the runtime which transition threads may switch to by themselves
 * (runtime/self_switch.c) and the code that must be off their stacks; none
 * when t->transition is NULL.
 */
int ulp_self_switch_publish(struct ulp_target *t, struct ulp_process *p);

/*
 * Wait until no thread is inside the runtime's self-switch check (each
 * goes back to a slot when done); -ETIMEDOUT after timeout_ms.
 */
int ulp_self_checks_wait(struct ulp_target *t, struct ulp_process *p, int timeout_ms);

#endif
