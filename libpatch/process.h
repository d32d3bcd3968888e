/* SPDX-License-Identifier: MIT */
/*
 * Process control with ptrace: every thread of a target seized (never a
 * SIGSTOP the target could see), threads stopped all at once and resumed,
 * new threads followed through PTRACE_O_TRACECLONE, and every stop the
 * target reports routed so that signals meant for it are delivered.
 */
#ifndef ULP_PROCESS_H
#define ULP_PROCESS_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct ulp_thread {
	pid_t tid;
	bool gone; /* exited */
	bool stopped; /* in a ptrace-stop we may act on */
	bool want_stop; /* we asked it to stop and keep it stopped */
	bool regs_valid; /* regs holds its registers at this stop */
	int pending_sig; /* signal to deliver when resumed (0: none) */
	uint64_t fs_base; /* TLS base, 0 until registers were read once */
	uint64_t stopped_at; /* ulp_now_us() when its current stop was reaped */
	uint64_t asked_at; /* when it was interrupted to be let go */
	struct user_regs_struct regs;
};

struct ulp_trap_site {
	uint64_t addr;
	uint64_t emulate_to; /* where the instruction being written there leads */
};

struct ulp_process {
	pid_t pid;
	int mem_fd; /* /proc/PID/mem, for writes to any page */
	bool exited;
	bool execed;
	bool stopping_all; /* threads that appear now must stop too */
	sigset_t saved_mask; /* the caller's mask; SIGCHLD is blocked while attached */
	pid_t own_tid; /* ulp's worker thread: its stops are not the application's */
	uint64_t longest_stop_us; /* longest time any other thread was held stopped */
	/* where ulp wrote an int3 this session: a SIGTRAP there is ulp's, not the target's */
	struct ulp_trap_site *trap_sites;
	size_t nr_trap_sites, cap_trap_sites;
	bool poking; /* int3s in place now */
	struct ulp_thread **threads; /* stable pointers: the array grows as threads appear */
	size_t nr_threads, cap_threads;
};

/*
 * Seize every thread of pid, re-reading /proc/PID/task until no new thread
 * appears.  Threads keep running.  Errors: -ESRCH "no such process",
 * -EBUSY "already traced by PID N", -EPERM.
 */
int ulp_process_attach(pid_t pid, struct ulp_process **out);

/* Stop every live thread at once; on return all are stopped with regs read. */
int ulp_process_stop_all(struct ulp_process *p);
/* Resume every thread, the first stopped first: none waits for the others twice. */
int ulp_process_resume_all(struct ulp_process *p);

int ulp_thread_resume(struct ulp_process *p, struct ulp_thread *t);

/* Fill t->regs from a stopped thread. */
int ulp_thread_read_regs(struct ulp_thread *t);

/* Write t->regs back to the thread (it must be stopped). */
int ulp_thread_set_regs(struct ulp_process *p, struct ulp_thread *t);

/*
 * Handle pending ptrace events; wait up to timeout_ms for at least one when
 * none is pending (0: do not wait).  Returns the number handled, or -errno.
 */
int ulp_process_poll(struct ulp_process *p, int timeout_ms);

/*
 * Handle t's pending event, if any.  Loops that wait for particular
 * threads call it for each: waitpid(-1) can keep returning the events of
 * threads running into int3s and never reach theirs.
 */
void ulp_thread_reap(struct ulp_process *p, struct ulp_thread *t);

/*
 * Wait until t reports a stop, without acting on it: the status is returned
 * for callers (remote calls) that own the thread.  Stops of other threads are
 * handled as ulp_process_poll does.  -ETIMEDOUT, -ESRCH if it exited.
 */
int ulp_process_wait_thread(struct ulp_process *p, struct ulp_thread *t, int timeout_ms,
			    int *status);

/*
 * Detach from every thread; they continue exactly where they were.  A few
 * are interrupted at a time, each let go as soon as it stops.
 */
int ulp_process_detach(struct ulp_process *p);
void ulp_process_free(struct ulp_process *p);

/*
 * Code changes with int3 (see poke.h).  A thread that traps at a site
 * registered here is sent on to emulate_to while p->poking, as if it had
 * run the new instruction; after the change, a late trap (raised before
 * the int3 went) re-runs the site.  It stops only for ulp to see it.
 */
int ulp_process_add_trap_site(struct ulp_process *p, uint64_t addr, uint64_t emulate_to);

/*
 * A stopped thread may have hit one of our int3s with the SIGTRAP not yet
 * reported (an interrupt reports first): let it run into that report, which
 * moves it back onto the site.  Returns 1 if it was let run (it stops again
 * at once if want_stop), 0 if it owes nothing, -errno.
 */
int ulp_thread_settle_trap(struct ulp_process *p, struct ulp_thread *t);

/* Track a thread we learnt about from a clone event. */
void ulp_process_adopt_thread(struct ulp_process *p, pid_t tid);

struct ulp_thread *ulp_process_find_thread(struct ulp_process *p, pid_t tid);
size_t ulp_process_nr_live(const struct ulp_process *p);

/* Monotonic microseconds, for stop-time accounting. */
uint64_t ulp_now_us(void);

#endif
