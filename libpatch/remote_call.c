/* SPDX-License-Identifier: MIT */
#include "remote_call.h"

#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "error.h"
#include "memory.h"
#include "procfs.h"
#include "recovery.h"

/* Large enough for AVX-512 and AMX state; the kernel tells the real size. */
#define ULP_XSTATE_MAX 16384
/* Left alone below the thread's stack pointer (the ABI's red zone). */
#define ULP_RED_ZONE 128
/* Where XSAVE keeps its header's XSTATE_BV. */
#define ULP_XSTATE_BV_OFFSET 512
/* AMX tile state: loading it faults in a thread that never asked for AMX. */
#define ULP_XFEATURE_AMX ((1ull << 17) | (1ull << 18))

#define ULP_ERESTARTSYS 512
#define ULP_ERESTARTNOINTR 513
#define ULP_ERESTARTNOHAND 514
#define ULP_ERESTART_RESTARTBLOCK 516
#define ULP_NR_RESTART_SYSCALL 219

struct ulp_remote {
	struct ulp_process *p;
	pid_t tid;
	struct ulp_call_stub stub;
	struct user_regs_struct call_regs; /* each call starts from these */
	struct user_regs_struct own_regs; /* the thread's, its syscall made again */
	struct iovec xstate; /* its extended state */
	uint64_t scratch, frame_at;
	long restart_err; /* the ERESTART* its syscall was interrupted with, else 0 */
	bool borrowed; /* its registers lead into the stub */
	bool abandoned; /* a call timed out and finishes on its own */
	bool restored; /* a call faulted: the thread has its own registers again */
	bool signalled; /* a handler of the application ran during a call */
};

/*
 * A thread stopped in a system call that the kernel would restart is
 * recorded as about to make it again (the kernel's own rewrite when no
 * handler runs), so the stub can return to it from anywhere.  Returns the
 * ERESTART* code undone, 0 if none.
 */
static long ulp_regs_restart_syscall(struct user_regs_struct *regs)
{
	long err = -(long)regs->rax;
	unsigned long long nr = regs->orig_rax;

	if ((long)nr < 0)
		return 0;
	regs->orig_rax = (unsigned long long)-1;
	if (err == ULP_ERESTARTSYS || err == ULP_ERESTARTNOINTR || err == ULP_ERESTARTNOHAND)
		regs->rax = nr;
	else if (err == ULP_ERESTART_RESTARTBLOCK)
		regs->rax = ULP_NR_RESTART_SYSCALL;
	else
		return 0;
	regs->rip -= 2;
	return err;
}

static uint64_t ulp_xcr0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static void ulp_frame_fill(struct ulp_call_frame *f, const struct user_regs_struct *r,
			   uint64_t xstate_bv)
{
	uint64_t mask = (ulp_xcr0() & ~ULP_XFEATURE_AMX) | (xstate_bv & ULP_XFEATURE_AMX);

	f->xrstor_mask_lo = (uint32_t)mask;
	f->xrstor_mask_hi = (uint32_t)(mask >> 32);
	f->r15 = r->r15;
	f->r14 = r->r14;
	f->r13 = r->r13;
	f->r12 = r->r12;
	f->rbp = r->rbp;
	f->rbx = r->rbx;
	f->r11 = r->r11;
	f->r10 = r->r10;
	f->r9 = r->r9;
	f->r8 = r->r8;
	f->rax = r->rax;
	f->rcx = r->rcx;
	f->rdx = r->rdx;
	f->rsi = r->rsi;
	f->rdi = r->rdi;
	f->rip = r->rip;
	f->cs = r->cs;
	f->rflags = r->eflags;
	f->rsp = r->rsp;
	f->ss = r->ss;
}

int ulp_remote_begin(struct ulp_process *p, struct ulp_thread *t, const struct ulp_call_stub *stub,
		     struct ulp_remote **out)
{
	struct user_regs_struct regs;
	struct ulp_call_frame frame;
	struct ulp_remote *r;
	struct iovec iov;
	uint64_t frame_at, xstate_at, xstate_bv = 0;
	unsigned char *xbuf;
	int ret;

	if (ptrace(PTRACE_GETREGS, t->tid, 0, &regs) < 0)
		return ulp_errorf(-errno, "cannot read registers of thread %d: %s", t->tid,
				  strerror(errno));
	xbuf = malloc(ULP_XSTATE_MAX);
	r = calloc(1, sizeof(*r));
	if (!xbuf || !r) {
		free(xbuf);
		free(r);
		return ulp_errorf(-ENOMEM, "out of memory");
	}
	iov.iov_base = xbuf;
	iov.iov_len = ULP_XSTATE_MAX;
	if (ptrace(PTRACE_GETREGSET, t->tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		ret = ulp_errorf(-errno, "cannot read extended state of thread %d: %s", t->tid,
				 strerror(errno));
		goto fail;
	}
	if (iov.iov_len >= ULP_XSTATE_BV_OFFSET + 8)
		memcpy(&xstate_bv, xbuf + ULP_XSTATE_BV_OFFSET, 8);

	/* From the top: red zone, frame, XSAVE image (64-byte aligned), scratch. */
	frame_at = (regs.rsp - ULP_RED_ZONE - sizeof(frame)) & ~15ull;
	xstate_at = (frame_at - iov.iov_len) & ~63ull;
	r->scratch = xstate_at - 64;

	r->call_regs = regs;
	r->restart_err = ulp_regs_restart_syscall(&regs);
	r->own_regs = regs;
	r->frame_at = frame_at;
	ulp_frame_fill(&frame, &regs, xstate_bv);
	/* Written before the thread is touched: a ulpd killed here changed nothing. */
	ret = ulp_mem_write(p, xstate_at, xbuf, iov.iov_len);
	if (ret == 0)
		ret = ulp_mem_write(p, frame_at, &frame, sizeof(frame));
	if (ret < 0)
		goto fail;

	r->call_regs.rsp = r->scratch; /* 16-byte aligned at the call */
	r->call_regs.rip = stub->call;
	r->call_regs.r12 = xstate_at;
	r->call_regs.r13 = frame_at;
	r->call_regs.orig_rax = (unsigned long long)-1; /* no syscall to restart or finish */
	r->call_regs.eflags &= ~0x400ull; /* the ABI's clear direction flag */
	r->p = p;
	r->tid = t->tid;
	r->stub = *stub;
	r->xstate.iov_base = xbuf;
	r->xstate.iov_len = iov.iov_len;
	*out = r;
	ulp_fault_point("remote-frame");
	return 0;
fail:
	free(xbuf);
	free(r);
	return ret;
}

/*
 * What a borrowed thread needs below its stack pointer: red zone, frame,
 * an XSAVE image as large as any (AMX), and the called functions' frames.
 */
#define ULP_REMOTE_STACK_NEED                                                                      \
	(ULP_RED_ZONE + sizeof(struct ulp_call_frame) + ULP_XSTATE_MAX + 16384)

/* Inside an rseq critical section: the kernel would move it to abort_ip. */
static bool ulp_thread_in_rseq_cs(struct ulp_process *p, const struct ulp_thread *t)
{
	struct __ptrace_rseq_configuration conf;
	struct {
		uint32_t version, flags;
		uint64_t start_ip, post_commit_offset, abort_ip;
	} cs;
	uint64_t cs_ptr = 0;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->tid, (void *)sizeof(conf), &conf) <= 0 ||
	    !conf.rseq_abi_pointer)
		return false; /* no rseq (or a kernel without the request): nothing to spoil */
	/* struct rseq: cpu_id_start, cpu_id, then the rseq_cs pointer */
	if (ulp_mem_read(p, conf.rseq_abi_pointer + 8, &cs_ptr, sizeof(cs_ptr)) < 0 || !cs_ptr ||
	    ulp_mem_read(p, cs_ptr, &cs, sizeof(cs)) < 0) {
		ulp_error_clear();
		return false;
	}
	return t->regs.rip >= cs.start_ip && t->regs.rip - cs.start_ip < cs.post_commit_offset;
}

bool ulp_remote_can_borrow(struct ulp_process *p, const struct ulp_thread *t)
{
	struct ulp_map_area *maps;
	size_t nr;
	bool room = false;

	if (!t->regs_valid || ulp_thread_in_rseq_cs(p, t))
		return false;
	if (ulp_proc_maps_read(p->pid, &maps, &nr) < 0) {
		ulp_error_clear();
		return false;
	}
	for (size_t i = 0; i < nr; i++)
		if (maps[i].start < t->regs.rsp && t->regs.rsp <= maps[i].end)
			/* the main thread's stack grows on demand; others are what they are */
			room = maps[i].stack ||
			       t->regs.rsp - maps[i].start >= ULP_REMOTE_STACK_NEED;
	free(maps);
	return room;
}

uint64_t ulp_remote_scratch(const struct ulp_remote *r)
{
	return r->scratch;
}

/*
 * 1: at the stub's getpid() entry (the call is done); 0: another
 * syscall-stop; -1: no syscall-stop.
 */
static int ulp_remote_syscall_stop(const struct ulp_remote *r)
{
	struct __ptrace_syscall_info info;

	if (ptrace(PTRACE_GET_SYSCALL_INFO, r->tid, (void *)sizeof(info), &info) <= 0 ||
	    info.op == PTRACE_SYSCALL_INFO_NONE)
		return -1;
	return info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == ULP_CALL_STUB_SYSCALL &&
	       info.instruction_pointer == r->stub.stop;
}

/* The called code itself faulted (not a signal someone sent)? */
static bool ulp_remote_faulted(const struct ulp_remote *r, int sig)
{
	siginfo_t si;

	if (sig != SIGSEGV && sig != SIGBUS && sig != SIGILL && sig != SIGFPE)
		return false;
	return ptrace(PTRACE_GETSIGINFO, r->tid, 0, &si) == 0 && si.si_code > 0;
}

/*
 * A call that faulted cannot go back through the stub: the thread gets
 * its own registers and extended state back here, the fault is dropped.
 */
static int ulp_remote_restore(struct ulp_remote *r, struct ulp_thread *t, uint64_t func)
{
	struct user_regs_struct regs;
	uint64_t at = 0;

	if (ptrace(PTRACE_GETREGS, r->tid, 0, &regs) == 0)
		at = regs.rip;
	if (ptrace(PTRACE_SETREGSET, r->tid, (void *)NT_X86_XSTATE, &r->xstate) < 0 ||
	    ptrace(PTRACE_SETREGS, r->tid, 0, &r->own_regs) < 0)
		return ulp_errorf(-errno, "cannot restore thread %d after a faulting call: %s",
				  r->tid, strerror(errno));
	r->restored = true;
	t->regs_valid = false;
	return ulp_errorf(-EFAULT, "a call of 0x%llx in process %d crashed at 0x%llx in thread %d",
			  (unsigned long long)func, r->p->pid, (unsigned long long)at, r->tid);
}

/* The call hangs: let it finish alone, without stopping at its syscalls. */
static int ulp_remote_abandon(struct ulp_remote *r, struct ulp_thread *t)
{
	int status;

	r->abandoned = true;
	ptrace(PTRACE_INTERRUPT, r->tid, 0, 0);
	if (ulp_process_wait_thread(r->p, t, 2000, &status) < 0)
		return ulp_errorf(-ETIMEDOUT, "a call into process %d on thread %d hung", r->p->pid,
				  r->tid);
	return ulp_errorf(-ETIMEDOUT, "a call into process %d on thread %d timed out", r->p->pid,
			  r->tid);
}

int ulp_remote_call(struct ulp_remote *r, uint64_t func, const uint64_t *args, int nr_args,
		    uint64_t *ret, int timeout_ms)
{
	static const size_t argregs[6] = {
		offsetof(struct user_regs_struct, rdi), offsetof(struct user_regs_struct, rsi),
		offsetof(struct user_regs_struct, rdx), offsetof(struct user_regs_struct, rcx),
		offsetof(struct user_regs_struct, r8),	offsetof(struct user_regs_struct, r9),
	};
	struct ulp_thread *t = ulp_process_find_thread(r->p, r->tid);
	struct user_regs_struct regs = r->call_regs;
	int64_t deadline = (int64_t)ulp_now_us() + (int64_t)timeout_ms * 1000;
	int sig = 0, status, rc;

	if (nr_args > 6)
		return ulp_errorf(-EINVAL, "remote call with %d arguments", nr_args);
	if (r->abandoned || r->restored)
		return ulp_errorf(-EBUSY, "thread %d is no longer borrowed (a call failed)",
				  r->tid);
	if (!t || t->gone)
		return ulp_errorf(-ESRCH, "thread %d of process %d is gone", r->tid, r->p->pid);
	regs.r11 = ulp_fault_armed("remote-crash") ? 1 : func;
	regs.rax = 0;
	for (int i = 0; i < nr_args; i++)
		memcpy((char *)&regs + argregs[i], &args[i], sizeof(uint64_t));
	if (ptrace(PTRACE_SETREGS, r->tid, 0, &regs) < 0)
		return ulp_errorf(-errno, "cannot set registers of thread %d: %s", r->tid,
				  strerror(errno));
	r->borrowed = true;
	t->regs_valid = false;
	ulp_fault_point("remote-call");
	for (;;) {
		int left = (int)((deadline - (int64_t)ulp_now_us()) / 1000), stop;

		if (ptrace(PTRACE_SYSCALL, r->tid, 0, (void *)(long)sig) < 0)
			return ulp_errorf(-errno, "cannot run thread %d: %s", r->tid,
					  strerror(errno));
		t->stopped = false;
		sig = 0;
		rc = ulp_process_wait_thread(r->p, t, left > 0 ? left : 0, &status);
		t = ulp_process_find_thread(r->p, r->tid);
		if (rc == -ETIMEDOUT)
			return ulp_remote_abandon(r, t);
		if (rc < 0)
			return ulp_errorf(rc, "process %d exited during a remote call", r->p->pid);
		if (status >> 16 != 0) {
			unsigned long child;

			/* A thread the call creates is traced from birth: follow it. */
			if (status >> 16 == PTRACE_EVENT_CLONE &&
			    ptrace(PTRACE_GETEVENTMSG, r->tid, 0, &child) == 0)
				ulp_process_adopt_thread(r->p, (pid_t)child);
			continue; /* an interrupt or clone event */
		}
		stop = (WSTOPSIG(status) & 0x7f) == SIGTRAP ? ulp_remote_syscall_stop(r) : -1;
		if (stop == 1)
			break;
		if (stop == 0) {
			ulp_fault_point("remote-syscall");
			continue; /* one of the called function's own syscalls */
		}
		sig = WSTOPSIG(status) & 0x7f;
		if (ulp_remote_faulted(r, sig))
			return ulp_remote_restore(r, t, func);
		/* A signal for the target: its handler runs on top of the call. */
		r->signalled = true;
	}
	if (ptrace(PTRACE_GETREGS, r->tid, 0, &regs) < 0)
		return ulp_errorf(-errno, "cannot read registers of thread %d: %s", r->tid,
				  strerror(errno));
	if (ret)
		*ret = regs.rbx;
	ulp_fault_point("remote-done");
	return 0;
}

int ulp_remote_end(struct ulp_remote *r)
{
	struct ulp_thread *t = ulp_process_find_thread(r->p, r->tid);
	int ret = 0;

	/*
	 * A handler ran meanwhile: a syscall the kernel restarts only when no
	 * handler runs (pause(), nanosleep()) returns EINTR, as it would have.
	 */
	if (r->borrowed && !r->restored && r->signalled &&
	    (r->restart_err == ULP_ERESTARTNOHAND || r->restart_err == ULP_ERESTART_RESTARTBLOCK)) {
		uint64_t fix[2] = { (uint64_t)-EINTR, r->own_regs.rip + 2 };

		ulp_mem_write(r->p, r->frame_at + offsetof(struct ulp_call_frame, rax), &fix[0], 8);
		ulp_mem_write(r->p, r->frame_at + offsetof(struct ulp_call_frame, rip), &fix[1], 8);
	}

	if (t && !t->gone) {
		t->regs_valid = false;
		ret = ulp_thread_resume(r->p, t);
	}
	free(r->xstate.iov_base);
	free(r);
	return ret;
}
