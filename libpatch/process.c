/* SPDX-License-Identifier: MIT */
#include "process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "procfs.h"

#define ULP_PTRACE_OPTIONS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD)

uint64_t ulp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct ulp_thread *ulp_process_find_thread(struct ulp_process *p, pid_t tid)
{
	for (size_t i = 0; i < p->nr_threads; i++)
		if (p->threads[i]->tid == tid)
			return p->threads[i];
	return NULL;
}

size_t ulp_process_nr_live(const struct ulp_process *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nr_threads; i++)
		n += !p->threads[i]->gone;
	return n;
}

static struct ulp_thread *ulp_process_add_thread(struct ulp_process *p, pid_t tid)
{
	struct ulp_thread *t;

	if (p->nr_threads == p->cap_threads) {
		size_t cap = p->cap_threads ? p->cap_threads * 2 : 16;
		struct ulp_thread **n = realloc(p->threads, cap * sizeof(*n));

		if (!n)
			return NULL;
		p->threads = n;
		p->cap_threads = cap;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	p->threads[p->nr_threads++] = t;
	return t;
}

void ulp_process_adopt_thread(struct ulp_process *p, pid_t tid)
{
	if (!ulp_process_find_thread(p, tid))
		ulp_process_add_thread(p, tid);
}

static int ulp_read_tracer_pid(pid_t pid)
{
	char path[64], line[256];
	int tracer = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(f);
	return tracer;
}

static int ulp_thread_seize(struct ulp_process *p, pid_t tid)
{
	struct ulp_thread *t;

	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)ULP_PTRACE_OPTIONS) < 0) {
		if (errno == ESRCH)
			return 0; /* exited meanwhile: nothing to follow */
		if (errno == EPERM) {
			int tracer = ulp_read_tracer_pid(tid);

			if (tracer == -ENOENT || ulp_proc_exited(tid))
				return 0; /* exiting thread: nothing to follow */

			/* A thread born from a clone event we saw only as our
			 * detach finished is still ours: adopt it. */
			if (tracer == getpid() && ulp_process_add_thread(p, tid))
				return 0;
			if (tracer > 0)
				return ulp_errorf(-EBUSY,
						  "process %d is already traced by process %d",
						  p->pid, tracer);
		}
		return ulp_errorf(-errno, "cannot attach to thread %d of process %d: %s", tid,
				  p->pid, strerror(errno));
	}
	t = ulp_process_add_thread(p, tid);
	if (!t)
		return ulp_errorf(-ENOMEM, "out of memory");
	return 0;
}

/* One pass over /proc/PID/task; returns how many threads were newly seized. */
static int ulp_process_seize_new(struct ulp_process *p)
{
	char path[64];
	struct dirent *de;
	int added = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", p->pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? ulp_errorf(-ESRCH, "no such process: %d", p->pid)
				       : ulp_errorf(-errno, "cannot list threads of %d: %s", p->pid,
						    strerror(errno));
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		int ret;

		if (tid <= 0 || ulp_process_find_thread(p, tid))
			continue;
		ret = ulp_thread_seize(p, tid);
		if (ret < 0) {
			closedir(d);
			return ret;
		}
		added++;
	}
	closedir(d);
	return added;
}

int ulp_process_attach(pid_t pid, struct ulp_process **out)
{
	struct ulp_process *p;
	char path[64];
	int tracer, ret;

	if (pid <= 0)
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	tracer = ulp_read_tracer_pid(pid);
	if (tracer == -ENOENT || ulp_proc_exited(pid))
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	if (tracer > 0 && tracer != getpid())
		return ulp_errorf(-EBUSY, "process %d is already traced by process %d", pid,
				  tracer);
	p = calloc(1, sizeof(*p));
	if (!p)
		return ulp_errorf(-ENOMEM, "out of memory");
	p->pid = pid;
	{
		sigset_t chld;

		/* Tracee stops arrive as SIGCHLD: wait for them with sigtimedwait
		 * instead of sleeping in slices. */
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		pthread_sigmask(SIG_BLOCK, &chld, &p->saved_mask);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	p->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->mem_fd < 0) {
		ret = ulp_errorf(errno == ENOENT ? -ESRCH : -errno, "cannot open %s: %s", path,
				 strerror(errno));
		pthread_sigmask(SIG_SETMASK, &p->saved_mask, NULL);
		free(p);
		return ret;
	}
	/* Threads created while we seize are either followed by TRACECLONE
	 * from an already-seized parent or found by the next pass. */
	do {
		ret = ulp_process_seize_new(p);
		if (ret < 0) {
			ulp_process_detach(p);
			ulp_process_free(p);
			return ret;
		}
	} while (ret > 0);
	if (p->nr_threads == 0) {
		ulp_process_free(p);
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	}
	*out = p;
	return 0;
}

static void ulp_thread_mark_gone(struct ulp_thread *t)
{
	t->gone = true;
	t->stopped = false;
	t->regs_valid = false;
}

/* A stop of t ends now: count it against the longest stop. */
static void ulp_thread_account_stop(struct ulp_process *p, struct ulp_thread *t)
{
	uint64_t held;

	if (!t->stopped_at)
		return;
	held = ulp_now_us() - t->stopped_at;
	t->stopped_at = 0;
	if (t->tid != p->own_tid && held > p->longest_stop_us)
		p->longest_stop_us = held;
}

static int ulp_thread_cont(struct ulp_process *p, struct ulp_thread *t, int sig)
{
	ulp_thread_account_stop(p, t);
	t->stopped = false;
	t->regs_valid = false;
	if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig) < 0) {
		if (errno == ESRCH) {
			ulp_thread_mark_gone(t);
			return 0;
		}
		return ulp_errorf(-errno, "cannot resume thread %d: %s", t->tid, strerror(errno));
	}
	return 0;
}

int ulp_thread_read_regs(struct ulp_thread *t)
{
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0) {
		if (errno == ESRCH) {
			ulp_thread_mark_gone(t);
			return -ESRCH;
		}
		return ulp_errorf(-errno, "cannot read registers of thread %d: %s", t->tid,
				  strerror(errno));
	}
	t->regs_valid = true;
	t->fs_base = t->regs.fs_base;
	return 0;
}

static struct ulp_trap_site *ulp_find_trap_site(const struct ulp_process *p, uint64_t addr)
{
	for (size_t i = 0; i < p->nr_trap_sites; i++)
		if (p->trap_sites[i].addr == addr)
			return &p->trap_sites[i];
	return NULL;
}

static bool ulp_is_trap_site(const struct ulp_process *p, uint64_t addr)
{
	return ulp_find_trap_site(p, addr) != NULL;
}

int ulp_process_add_trap_site(struct ulp_process *p, uint64_t addr, uint64_t emulate_to)
{
	struct ulp_trap_site *old = ulp_find_trap_site(p, addr);

	if (old) {
		old->emulate_to = emulate_to;
		return 0;
	}
	if (p->nr_trap_sites == p->cap_trap_sites) {
		size_t cap = p->cap_trap_sites ? p->cap_trap_sites * 2 : 16;
		struct ulp_trap_site *n = realloc(p->trap_sites, cap * sizeof(*n));

		if (!n)
			return ulp_errorf(-ENOMEM, "out of memory");
		p->trap_sites = n;
		p->cap_trap_sites = cap;
	}
	p->trap_sites[p->nr_trap_sites++] = (struct ulp_trap_site){ addr, emulate_to };
	return 0;
}

/*
 * A SIGTRAP stop of t: if the kernel raised it for one of our int3s, put t
 * back on the site (the int3 "did not happen") and hold it while a change
 * is in progress.  True if the trap was ours.
 */
static bool ulp_thread_took_trap(struct ulp_process *p, struct ulp_thread *t)
{
	const struct ulp_trap_site *site;
	siginfo_t si;

	if (!p->nr_trap_sites || ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) < 0 ||
	    si.si_code != SI_KERNEL)
		return false;
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &t->regs) < 0 ||
	    !(site = ulp_find_trap_site(p, t->regs.rip - 1)))
		return false;
	t->regs.rip--;
	t->fs_base = t->regs.fs_base;
	/* Mid-change the site holds an int3: do what it will do. */
	if (p->poking)
		t->regs.rip = site->emulate_to;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0)
		return false;
	return true;
}

/* Is SIGTRAP pending for thread tid itself? */
static bool ulp_thread_sigtrap_pending(pid_t pid, pid_t tid)
{
	char path[96], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigPnd: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask & (1ull << (SIGTRAP - 1));
}

int ulp_thread_settle_trap(struct ulp_process *p, struct ulp_thread *t)
{
	int ret;

	if (!p->nr_trap_sites || t->gone || !t->stopped)
		return 0;
	if (!t->regs_valid) {
		ret = ulp_thread_read_regs(t);
		if (ret < 0)
			return ret;
	}
	if (!ulp_is_trap_site(p, t->regs.rip - 1) || !ulp_thread_sigtrap_pending(p->pid, t->tid))
		return 0;
	/* want_stop stays: it stops again as the SIGTRAP is dequeued */
	ret = ulp_thread_cont(p, t, 0);
	return ret < 0 ? ret : 1;
}

/*
 * Route one wait status.  A thread we want stopped stays stopped (a signal
 * it received is kept to deliver on resume); any other stop is resumed at
 * once so the target's own signals reach it.  True if a thread is now held
 * stopped for us.
 */
static bool ulp_process_handle_status(struct ulp_process *p, pid_t tid, int status)
{
	struct ulp_thread *t = ulp_process_find_thread(p, tid);
	int event = status >> 16;

	if (!t) {
		/* A new thread's first stop can arrive before its parent's
		 * PTRACE_EVENT_CLONE: it is ours if it lives in our process. */
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/task/%d", p->pid, tid);
		if (access(path, F_OK) != 0) {
			if (WIFSTOPPED(status))
				ptrace(PTRACE_DETACH, tid, 0, 0);
			return false;
		}
		t = ulp_process_add_thread(p, tid);
		if (!t)
			return false;
		t->want_stop = p->stopping_all;
	}
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		ulp_thread_mark_gone(t);
		if (tid == p->pid)
			p->exited = true;
		return false;
	}
	if (!WIFSTOPPED(status))
		return false;
	if (event == PTRACE_EVENT_CLONE) {
		unsigned long child;

		if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 &&
		    !ulp_process_find_thread(p, (pid_t)child)) {
			struct ulp_thread *c = ulp_process_add_thread(p, (pid_t)child);

			t = ulp_process_find_thread(p, tid); /* array may have moved */
			if (c)
				c->want_stop = t->want_stop;
		}
	} else if (event == PTRACE_EVENT_EXEC) {
		p->execed = true;
	} else if (event == 0 && WSTOPSIG(status) == (SIGTRAP | 0x80)) {
		/* a syscall-stop of a thread a remote call let go (remote_call.c): nothing to
		 * deliver */
	} else if (event == 0) {
		/* signal-delivery-stop: the signal belongs to the target, unless
		 * it is the trap of one of our int3s */
		if (WSTOPSIG(status) != SIGTRAP || !ulp_thread_took_trap(p, t))
			t->pending_sig = WSTOPSIG(status);
		else
			t->stopped_at = ulp_now_us(); /* a stop ulp caused: counted */
	}
	t->stopped = true;
	t->regs_valid = false;
	if (!t->want_stop) {
		int sig = t->pending_sig;

		t->pending_sig = 0;
		ulp_thread_cont(p, t, sig);
		return false;
	}
	t->stopped_at = ulp_now_us();
	return true;
}

/*
 * Handle pending events, until which reports or a thread stops for the
 * caller.  Threads sent on from an int3 may trap again at once, so one call
 * handles at most a round of events per thread, and looks for which first:
 * neither the caller's loop nor the thread it waits for can be crowded out.
 */
static int ulp_process_reap(struct ulp_process *p, pid_t which, int *status_out)
{
	size_t cap = 2 * p->nr_threads + 16;
	int handled = 0;

	for (size_t round = 0; round < cap; round++) {
		int status;
		pid_t tid = -1;

		if (round == 0 && which > 0 && status_out)
			tid = waitpid(which, &status, __WALL | WNOHANG);
		if (tid <= 0)
			tid = waitpid(-1, &status, __WALL | WNOHANG);

		if (tid == 0)
			break;
		if (tid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			return -errno;
		}
		handled++;
		if (which > 0 && tid == which && status_out) {
			*status_out = status;
			return handled | 0x40000000;
		}
		/* a thread now stopped for the caller is acted on at once */
		if (ulp_process_handle_status(p, tid, status))
			break;
	}
	return handled;
}

void ulp_thread_reap(struct ulp_process *p, struct ulp_thread *t)
{
	int status;
	pid_t tid = t->tid;

	if (t->gone || t->stopped)
		return;
	if (waitpid(tid, &status, __WALL | WNOHANG) == tid)
		ulp_process_handle_status(p, tid, status);
}

/* Sleep until a tracee reports (SIGCHLD) or deadline_us passes. */
static void ulp_wait_chld(uint64_t deadline_us)
{
	uint64_t now = ulp_now_us();
	struct timespec ts;
	sigset_t chld;

	if (now >= deadline_us)
		return;
	ts.tv_sec = (time_t)((deadline_us - now) / 1000000u);
	ts.tv_nsec = (long)((deadline_us - now) % 1000000u) * 1000;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigtimedwait(&chld, NULL, &ts);
}

int ulp_process_poll(struct ulp_process *p, int timeout_ms)
{
	uint64_t deadline = ulp_now_us() + (uint64_t)timeout_ms * 1000u;

	for (;;) {
		int n = ulp_process_reap(p, 0, NULL);

		if (n != 0 || timeout_ms == 0 || ulp_now_us() >= deadline)
			return n;
		ulp_wait_chld(deadline);
	}
}

int ulp_process_wait_thread(struct ulp_process *p, struct ulp_thread *t, int timeout_ms,
			    int *status)
{
	uint64_t deadline = ulp_now_us() + (uint64_t)timeout_ms * 1000u;
	pid_t tid = t->tid;

	for (;;) {
		int n = ulp_process_reap(p, tid, status);

		if (n < 0)
			return n;
		t = ulp_process_find_thread(p, tid);
		if (n & 0x40000000) {
			if (WIFEXITED(*status) || WIFSIGNALED(*status)) {
				ulp_process_handle_status(p, tid, *status);
				return -ESRCH;
			}
			t->stopped = true;
			t->stopped_at = ulp_now_us();
			t->regs_valid = false;
			return 0;
		}
		if (!t || t->gone)
			return -ESRCH;
		if (ulp_now_us() >= deadline)
			return -ETIMEDOUT;
		ulp_wait_chld(deadline);
	}
}

int ulp_thread_resume(struct ulp_process *p, struct ulp_thread *t)
{
	int sig = t->pending_sig;

	t->want_stop = false;
	if (t->gone || !t->stopped)
		return 0;
	t->pending_sig = 0;
	return ulp_thread_cont(p, t, sig);
}

int ulp_thread_set_regs(struct ulp_process *p, struct ulp_thread *t)
{
	(void)p;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0)
		return ulp_errorf(-errno, "cannot set registers of thread %d: %s", t->tid,
				  strerror(errno));
	return 0;
}

static int ulp_process_stop_all_locked(struct ulp_process *p, uint64_t deadline);

/* Ask every live thread to stop, all at once; their stops are reaped later. */
static void ulp_process_interrupt_all(struct ulp_process *p)
{
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct ulp_thread *t = p->threads[i];

		if (t->gone)
			continue;
		t->want_stop = true;
		if (!t->stopped && ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 && errno == ESRCH)
			ulp_thread_mark_gone(t);
	}
}

int ulp_process_stop_all(struct ulp_process *p)
{
	uint64_t deadline = ulp_now_us() + 5000000u;
	int ret;

	p->stopping_all = true;
	ret = ulp_process_stop_all_locked(p, deadline);
	p->stopping_all = false;
	return ret;
}

static int ulp_process_stop_all_locked(struct ulp_process *p, uint64_t deadline)
{
	/* Interrupt everyone first, then wait: stopping threads one after
	 * another would hold the early ones while the late ones run. */
	ulp_process_interrupt_all(p);
	for (;;) {
		bool all = true;
		int ret;

		for (size_t i = 0; i < p->nr_threads; i++) {
			struct ulp_thread *t = p->threads[i];

			ulp_thread_reap(p, t);
			t = p->threads[i];
			if (t->gone || t->stopped)
				continue;
			/* New threads reported by clone events inherit want_stop
			 * and arrive stopped on their own. */
			if (!t->want_stop) {
				t->want_stop = true;
				if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 && errno == ESRCH)
					ulp_thread_mark_gone(t);
			}
			all = false;
		}
		if (all)
			break;
		if (p->exited)
			return ulp_errorf(-ESRCH, "process %d exited", p->pid);
		if (ulp_now_us() > deadline)
			return ulp_errorf(-ETIMEDOUT,
					  "threads of process %d did not stop within 5 s", p->pid);
		ret = ulp_process_poll(p, 1);
		if (ret < 0)
			return ret;
	}
	if (ulp_process_nr_live(p) == 0)
		return ulp_errorf(-ESRCH, "process %d exited", p->pid);
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct ulp_thread *t = p->threads[i];

		if (!t->gone && !t->regs_valid)
			ulp_thread_read_regs(t);
	}
	return 0;
}

static int ulp_thread_cmp_stopped_at(const void *a, const void *b)
{
	const struct ulp_thread *x = *(struct ulp_thread *const *)a;
	const struct ulp_thread *y = *(struct ulp_thread *const *)b;

	return x->stopped_at < y->stopped_at ? -1 : x->stopped_at > y->stopped_at;
}

int ulp_process_resume_all(struct ulp_process *p)
{
	struct ulp_thread **order = malloc(p->nr_threads * sizeof(*order) + 1);
	size_t n = 0;
	int ret = 0;

	/* Each resume can hand the CPU to the woken thread: resuming in the
	 * order of the stops keeps the longest stop near the time the stop-all
	 * took, instead of that plus the time all the resumes take. */
	if (order) {
		for (size_t i = 0; i < p->nr_threads; i++)
			order[n++] = p->threads[i];
		qsort(order, n, sizeof(*order), ulp_thread_cmp_stopped_at);
	}
	for (size_t i = 0; i < p->nr_threads; i++) {
		int r = ulp_thread_resume(p, order ? order[i] : p->threads[i]);

		if (r < 0 && !ret)
			ret = r;
	}
	free(order);
	return ret;
}

/* Let a stopped thread go for good, with the signal it may still owe. */
static void ulp_thread_detach(struct ulp_process *p, struct ulp_thread *t)
{
	ulp_thread_account_stop(p, t);
	ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->pending_sig);
	t->pending_sig = 0;
	t->stopped = false;
	t->gone = true;
}

/*
 * Threads asked to stop for their detach at once.  Interrupting everyone
 * would make the last to be let go wait for all the others' detaches; a
 * thread slow to acknowledge (waiting for a CPU) leaves the window so a
 * crowd of busy threads is still waited for in parallel.
 */
#define ULP_DETACH_WINDOW 4
#define ULP_DETACH_SLOW_US 2000u

int ulp_process_detach(struct ulp_process *p)
{
	uint64_t deadline = ulp_now_us() + 5000000u;
	size_t next = 0;
	int ret = 0;

	/* PTRACE_DETACH needs a stopped tracee: interrupt a few at a time and
	 * let each go as soon as it reports.  Threads cloned meanwhile are
	 * appended to the list and reach the window in turn. */
	for (;;) {
		uint64_t now = ulp_now_us();
		unsigned in_window = 0;
		bool left = false;

		for (size_t i = 0; i < next; i++) {
			struct ulp_thread *t = p->threads[i];

			ulp_thread_reap(p, t);
			t = p->threads[i];
			if (t->gone)
				continue;
			if (t->stopped && ulp_thread_settle_trap(p, t) <= 0) {
				ulp_thread_detach(p, t);
				continue;
			}
			left = true;
			if (now - t->asked_at < ULP_DETACH_SLOW_US)
				in_window++;
		}
		for (; next < p->nr_threads && in_window < ULP_DETACH_WINDOW; next++) {
			struct ulp_thread *t = p->threads[next];

			if (t->gone)
				continue;
			t->want_stop = true;
			t->asked_at = now;
			left = true;
			if (t->stopped) {
				ulp_thread_detach(p, t);
				continue;
			}
			if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 && errno == ESRCH) {
				ulp_thread_mark_gone(t);
				continue;
			}
			in_window++;
		}
		if ((!left && next == p->nr_threads) || p->exited)
			break;
		if (ulp_now_us() > deadline) {
			ret = ulp_errorf(-ETIMEDOUT,
					 "threads of process %d did not stop within 5 s to detach",
					 p->pid);
			break;
		}
		if (ulp_process_poll(p, 1) < 0)
			break;
	}
	/* Threads cloned while we detached are traced by us from birth: wait
	 * for their first stop and let them go too. */
	for (uint64_t end = ulp_now_us() + 1000000u; ulp_now_us() < end;) {
		int status;
		pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);

		if (tid < 0)
			break; /* ECHILD: nothing traced any more */
		if (tid == 0) {
			ulp_wait_chld(ulp_now_us() + 10000u);
			continue;
		}
		if (WIFSTOPPED(status))
			ptrace(PTRACE_DETACH, tid, 0,
			       (void *)(long)((status >> 16) == 0 ? WSTOPSIG(status) : 0));
	}
	return ret;
}

void ulp_process_free(struct ulp_process *p)
{
	if (!p)
		return;
	pthread_sigmask(SIG_SETMASK, &p->saved_mask, NULL);
	if (p->mem_fd >= 0)
		close(p->mem_fd);
	for (size_t i = 0; i < p->nr_threads; i++)
		free(p->threads[i]);
	free(p->threads);
	free(p->trap_sites);
	free(p);
}
