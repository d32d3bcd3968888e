/* SPDX-License-Identifier: MIT */
/*
 * Calling functions inside the target on one of its own threads, through
 * the call stub (call_stub.h).  The thread's registers and extended state
 * are written on its own stack before it is borrowed, and the stub puts
 * them back itself: whether ulpd lives to the end or is killed at any
 * point, the thread ends the session where it was, with every register as
 * it was.  A system call it was blocked in is made again, as the kernel
 * restarts one after a signal without a handler.
 */
#ifndef ULP_REMOTE_CALL_H
#define ULP_REMOTE_CALL_H

#include <stdbool.h>
#include <stdint.h>

#include "call_stub.h"
#include "process.h"

struct ulp_remote;

/*
 * May t (stopped, registers read) be borrowed?  Not with too little stack
 * below its stack pointer for the saved state and the call (a small
 * sigaltstack, a fiber's stack), nor inside an rseq critical section,
 * which the stub's return would re-enter unprotected.
 */
bool ulp_remote_can_borrow(struct ulp_process *p, const struct ulp_thread *t);

/*
 * Borrow thread t, which must be stopped by us.  Other threads are left as
 * they are (running or stopped).
 */
int ulp_remote_begin(struct ulp_process *p, struct ulp_thread *t, const struct ulp_call_stub *stub,
		     struct ulp_remote **out);

/*
 * Call func on the borrowed thread; *ret receives %rax.  Signals for the
 * thread are delivered meanwhile.  After -ETIMEDOUT the call is left to
 * finish on its own and no further call is made in this session.
 */
int ulp_remote_call(struct ulp_remote *r, uint64_t func, const uint64_t *args, int nr_args,
		    uint64_t *ret, int timeout_ms);

/* 64 bytes of the thread's stack that last until ulp_remote_end(). */
uint64_t ulp_remote_scratch(const struct ulp_remote *r);

/* Give the thread back: it runs through the stub's return into its own code. */
int ulp_remote_end(struct ulp_remote *r);

#endif
