/* SPDX-License-Identifier: MIT */
#include "remote_call.h"

#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "error.h"
#include "memory.h"

/* Large enough for AVX-512 state; the kernel tells the real size. */
#define ULP_XSTATE_MAX 16384
/* Below the red zone of whatever the thread was running. */
#define ULP_RED_ZONE 128

struct ulp_saved_thread {
	struct user_regs_struct regs;
	struct iovec xstate;
	unsigned char xbuf[ULP_XSTATE_MAX];
};

static int ulp_save_thread(struct ulp_thread *t, struct ulp_saved_thread *s)
{
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &s->regs) < 0)
		return ulp_errorf(-errno, "cannot read registers of thread %d: %s", t->tid,
				  strerror(errno));
	s->xstate.iov_base = s->xbuf;
	s->xstate.iov_len = sizeof(s->xbuf);
	if (ptrace(PTRACE_GETREGSET, t->tid, (void *)NT_X86_XSTATE, &s->xstate) < 0)
		return ulp_errorf(-errno, "cannot read extended state of thread %d: %s", t->tid,
				  strerror(errno));
	return 0;
}

static int ulp_restore_thread(struct ulp_thread *t, struct ulp_saved_thread *s)
{
	if (ptrace(PTRACE_SETREGSET, t->tid, (void *)NT_X86_XSTATE, &s->xstate) < 0)
		return ulp_errorf(-errno, "cannot restore extended state of thread %d: %s", t->tid,
				  strerror(errno));
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &s->regs) < 0)
		return ulp_errorf(-errno, "cannot restore registers of thread %d: %s", t->tid,
				  strerror(errno));
	t->regs = s->regs;
	t->regs_valid = true;
	return 0;
}

int ulp_remote_call(struct ulp_process *p, struct ulp_thread *t, uint64_t func,
		    const uint64_t *args, int nr_args, uint64_t *ret, int timeout_ms)
{
	struct ulp_saved_thread *saved;
	struct user_regs_struct regs;
	pid_t tid = t->tid;
	uint64_t sp;
	int err = 0, status, rc;

	if (nr_args > 6)
		return ulp_errorf(-EINVAL, "remote call with %d arguments", nr_args);
	saved = malloc(sizeof(*saved));
	if (!saved)
		return ulp_errorf(-ENOMEM, "out of memory");
	rc = ulp_save_thread(t, saved);
	if (rc < 0)
		goto out;

	regs = saved->regs;
	sp = (regs.rsp - ULP_RED_ZONE - 256) & ~(uint64_t)15;
	sp -= 8; /* the return address: entry sees rsp+8 16-byte aligned */
	rc = ulp_mem_write_u64(p, sp, 0);
	if (rc < 0)
		goto out;
	regs.rsp = sp;
	regs.rip = func;
	regs.rax = 0;
	regs.orig_rax = (unsigned long long)-1;
	{
		unsigned long long *argregs[6] = { &regs.rdi, &regs.rsi, &regs.rdx,
						   &regs.rcx, &regs.r8,	 &regs.r9 };

		for (int i = 0; i < nr_args; i++)
			*argregs[i] = args[i];
	}
	if (ptrace(PTRACE_SETREGS, tid, 0, &regs) < 0) {
		rc = ulp_errorf(-errno, "cannot set registers of thread %d: %s", tid,
				strerror(errno));
		goto out;
	}
	t->stopped = false;
	t->regs_valid = false;
	if (ptrace(PTRACE_CONT, tid, 0, 0) < 0) {
		rc = ulp_errorf(-errno, "cannot run thread %d: %s", tid, strerror(errno));
		goto restore;
	}
	for (;;) {
		rc = ulp_process_wait_thread(p, t, timeout_ms, &status);
		t = ulp_process_find_thread(p, tid);
		if (rc == -ETIMEDOUT) {
			/* The call is stuck; take the thread back and pretend it
			 * never happened rather than hang the daemon. */
			ptrace(PTRACE_INTERRUPT, tid, 0, 0);
			if (ulp_process_wait_thread(p, t, 2000, &status) < 0) {
				rc = ulp_errorf(-ETIMEDOUT, "remote call in thread %d hung", tid);
				goto out;
			}
			err = ulp_errorf(-ETIMEDOUT, "remote call in thread %d timed out", tid);
			goto restore;
		}
		if (rc < 0) {
			rc = ulp_errorf(rc, "process %d exited during a remote call", p->pid);
			goto out;
		}
		if (status >> 16 != 0) {
			unsigned long child;

			/* A thread the call creates is traced from birth: follow it. */
			if (status >> 16 == PTRACE_EVENT_CLONE &&
			    ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0)
				ulp_process_adopt_thread(p, (pid_t)child);
			/* a stray PTRACE_INTERRUPT or clone event: keep going */
			ptrace(PTRACE_CONT, tid, 0, 0);
			continue;
		}
		if (WSTOPSIG(status) == SIGSEGV) {
			if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) {
				rc = -errno;
				goto out;
			}
			if (regs.rip == 0) {
				if (ret)
					*ret = regs.rax;
				break;
			}
			err = ulp_errorf(
				-EFAULT, "remote call at 0x%llx crashed at 0x%llx in thread %d",
				(unsigned long long)func, (unsigned long long)regs.rip, tid);
			goto restore;
		}
		/* A signal for the target arrived meanwhile: deliver it now; its
		 * handler runs on top of our call and returns into it. */
		ptrace(PTRACE_CONT, tid, 0, (void *)(long)WSTOPSIG(status));
	}
restore:
	t->stopped = true;
	rc = ulp_restore_thread(t, saved);
	if (rc == 0)
		rc = err;
out:
	free(saved);
	return rc;
}
