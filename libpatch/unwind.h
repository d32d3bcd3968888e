/* SPDX-License-Identifier: MIT */
/*
 * Remote stack unwinding with libunwind-ptrace (.eh_frame; no frame pointers
 * needed).  Stack memory is read in page-sized blocks with process_vm_readv
 * and registers come from the registers already fetched at the stop, so a
 * frame costs microseconds instead of one ptrace call per word.
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
 * Unwind a stopped thread whose registers are regs.  ips[0] is the current
 * rip; the others are return addresses.  Returns 0 when the walk reached
 * the outermost frame, -EAGAIN if it stopped early (unreliable stack: the
 * caller must treat it as "cannot prove safe"), or another -errno.
 */
int ulp_unwind_thread(struct ulp_unwinder *u, pid_t tid, const struct user_regs_struct *regs,
		      uint64_t *ips, size_t max, size_t *nr);

#endif
