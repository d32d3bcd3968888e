/* SPDX-License-Identifier: MIT */
/*
 * Calling a function inside the target on one of its own threads.  The
 * thread's registers and extended state are saved and restored exactly; the
 * call returns to address 0 and is caught as the SIGSEGV that follows.  A
 * syscall the thread was blocked in restarts as if nothing happened
 * (orig_rax = -1 during the call keeps the kernel from "restarting" our
 * call instead).
 */
#ifndef ULP_REMOTE_CALL_H
#define ULP_REMOTE_CALL_H

#include <stdint.h>

#include "process.h"

/*
 * t must be stopped by us.  Other threads are left as they are (running or
 * stopped).  *ret receives %rax.  On -ETIMEDOUT the call is abandoned and the
 * thread's state restored anyway.
 */
int ulp_remote_call(struct ulp_process *p, struct ulp_thread *t, uint64_t func,
		    const uint64_t *args, int nr_args, uint64_t *ret, int timeout_ms);

#endif
