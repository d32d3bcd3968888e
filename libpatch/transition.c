/* SPDX-License-Identifier: MIT */
#include "transition.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <time.h>

#include "codegen.h"
#include "error.h"
#include "memory.h"
#include "process.h"
#include "unwind.h"

#define ULP_MAX_FRAMES 512

static uint64_t ulp_thread_state_addr(const struct ulp_transition *tr, const struct ulp_thread *th)
{
	return th->regs.fs_base + (uint64_t)(int64_t)tr->target->tls_offset;
}

static int ulp_thread_write_state(struct ulp_transition *tr, struct ulp_thread *th,
				  unsigned char state)
{
	return ulp_mem_write(tr->proc, ulp_thread_state_addr(tr, th), &state, 1);
}

int ulp_transition_start(struct ulp_transition *tr, ulp_stopped_fn fn, void *arg)
{
	struct ulp_process *p = tr->proc;
	unsigned char from =
		tr->to_state == ULP_THREAD_PATCHED ? ULP_THREAD_UNPATCHED : ULP_THREAD_PATCHED;
	uint64_t *addrs;
	size_t n = 0;
	int ret;

	/* New threads copy the TLS init image: make them start switched. */
	ret = ulp_mem_write(p, tr->target->tls_init, &tr->to_state, 1);
	if (ret < 0)
		return ret;
	ret = ulp_process_stop_all(p);
	if (ret < 0)
		goto out;
	addrs = malloc((p->nr_threads + 1) * sizeof(*addrs));
	if (!addrs) {
		ret = ulp_errorf(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct ulp_thread *th = p->threads[i];

		if (!th->gone && th->regs_valid && th->regs.fs_base)
			addrs[n++] = ulp_thread_state_addr(tr, th);
	}
	ret = ulp_mem_set_bytes(p, addrs, n, from);
	free(addrs);
	if (ret < 0)
		goto out;
	ret = fn(tr, arg);
out:
	ulp_process_resume_all(p);
	return ret;
}

static bool ulp_ip_busy(const struct ulp_transition *tr, uint64_t ip)
{
	for (size_t i = 0; i < tr->nr_busy; i++)
		if (ip >= tr->busy[i].start && ip < tr->busy[i].end)
			return true;
	return false;
}

/*
 * Decide for one stopped thread.  Returns 1 if switched (or already in
 * to_state), 0 if its stack still holds busy code, -errno on failure.
 */
static int ulp_transition_check_thread(struct ulp_transition *tr, struct ulp_thread *th,
				       uint64_t *ips, uint64_t *blocker)
{
	unsigned char state;
	size_t n = 0;
	int ret;

	if (!th->regs.fs_base)
		return 1; /* not a libc thread (raw clone): it cannot run slot code */
	ret = ulp_mem_read(tr->proc, ulp_thread_state_addr(tr, th), &state, 1);
	if (ret == -EFAULT || ret == -ESRCH)
		return -ESRCH; /* exiting: its TLS is gone */
	if (ret < 0)
		return ret;
	if (state == tr->to_state)
		return 1;
	ret = ulp_unwind_thread(tr->unw, th->tid, &th->regs, ips, ULP_MAX_FRAMES, &n);
	if (ret < 0) {
		*blocker = n ? ips[n - 1] : th->regs.rip;
		return 0; /* unreliable stack: cannot prove it safe, retry later */
	}
	for (size_t f = 0; f < n; f++) {
		/* return addresses point after the call instruction */
		uint64_t ip = f ? ips[f] - 1 : ips[f];

		if (ulp_ip_busy(tr, ip)) {
			*blocker = ip;
			return 0;
		}
	}
	ret = ulp_thread_write_state(tr, th, tr->to_state);
	return ret < 0 ? ret : 1;
}

static bool ulp_thread_switched(struct ulp_transition *tr, struct ulp_thread *th)
{
	unsigned char state;

	/* TLS is plain memory: read it without stopping the thread. */
	if (!th->fs_base)
		return false;
	if (ulp_mem_read(tr->proc, th->fs_base + (uint64_t)(int64_t)tr->target->tls_offset, &state,
			 1) < 0)
		return false;
	return state == tr->to_state;
}

/*
 * Threads checked at once.  Those stopped together wait for one another's
 * checks, so a few at a time bound every stop by a few checks; a thread
 * that is slow to acknowledge (runnable but waiting for a CPU) stops
 * counting against the window, so a crowd of busy threads is still waited
 * for in parallel.
 */
#define ULP_CHECK_WINDOW 4
#define ULP_CHECK_SLOW_US 2000u
/* A thread that does not report within a pass is checked in the next. */
#define ULP_PASS_US 1000000u

struct ulp_check {
	pid_t tid;
	uint64_t since; /* when it was interrupted; 0 = not yet */
	bool done;
};

/* Check and resume a thread that has reported its stop. */
static int ulp_transition_check_reported(struct ulp_transition *tr, struct ulp_thread *th,
					 uint64_t *ips, bool *all)
{
	uint64_t blocker = 0;
	int r;

	r = ulp_thread_read_regs(th);
	if (r == 0)
		r = ulp_transition_check_thread(tr, th, ips, &blocker);
	ulp_thread_resume(tr->proc, th);
	if (r == -ESRCH)
		return 0;
	if (r == 0) {
		*all = false;
		ulp_errorf(-EBUSY, "thread %d is still running code being changed (at 0x%llx)",
			   th->tid, (unsigned long long)blocker);
	}
	return r < 0 ? r : 0;
}

/*
 * One pass over the threads not yet switched: keep a small window of them
 * interrupted, and check and resume each as soon as it reports.  Every
 * thread is stopped only for its own check and those of the few stopped
 * with it.
 */
int ulp_transition_try_complete(struct ulp_transition *tr)
{
	struct ulp_process *p = tr->proc;
	uint64_t *ips = malloc(ULP_MAX_FRAMES * sizeof(*ips));
	uint64_t deadline = ulp_now_us() + ULP_PASS_US;
	struct ulp_check *todo = NULL;
	size_t nr = 0, next = 0, left;
	bool all = true;
	int ret = 0;

	if (!ips)
		return ulp_errorf(-ENOMEM, "out of memory");
	ulp_process_poll(p, 0);
	todo = calloc(p->nr_threads + 1, sizeof(*todo));
	if (!todo) {
		ret = ulp_errorf(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct ulp_thread *th = p->threads[i];

		if (!th->gone && !ulp_thread_switched(tr, th))
			todo[nr++].tid = th->tid;
	}
	for (left = nr; left > 0;) {
		uint64_t now = ulp_now_us();
		unsigned in_window = 0;

		for (size_t i = 0; i < next; i++)
			if (!todo[i].done && now - todo[i].since < ULP_CHECK_SLOW_US)
				in_window++;
		for (; next < nr && in_window < ULP_CHECK_WINDOW; next++) {
			struct ulp_thread *th = ulp_process_find_thread(p, todo[next].tid);

			todo[next].since = now;
			th->want_stop = true;
			if (!th->stopped && ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) < 0) {
				th->want_stop = false;
				todo[next].done = true;
				left--;
				continue;
			}
			in_window++;
		}
		for (size_t i = 0; i < next; i++) {
			struct ulp_thread *th;
			int r;

			if (todo[i].done)
				continue;
			th = ulp_process_find_thread(p, todo[i].tid);
			if (!th->gone && !th->stopped)
				continue;
			todo[i].done = true;
			left--;
			if (th->gone)
				continue;
			r = ulp_transition_check_reported(tr, th, ips, &all);
			if (r < 0 && !ret)
				ret = r;
		}
		if (!left)
			break;
		if (p->exited || ulp_now_us() > deadline) {
			all = false;
			break;
		}
		if (ulp_process_poll(p, 1) < 0)
			ret = -ESRCH;
	}
	/* Anything still asked to stop (end of the pass) must not stay stopped. */
	for (size_t i = 0; i < next; i++) {
		if (!todo[i].done) {
			struct ulp_thread *th = ulp_process_find_thread(p, todo[i].tid);

			th->want_stop = false;
			ulp_thread_resume(p, th);
		}
	}
out:
	free(todo);
	free(ips);
	if (p->exited)
		return ulp_errorf(-ESRCH, "process %d exited", p->pid);
	if (ret < 0)
		return ret;
	return all ? 1 : 0;
}

int ulp_transition_finish(struct ulp_transition *tr, ulp_stopped_fn fn, void *arg)
{
	int ret;

	ret = ulp_process_stop_all(tr->proc);
	if (ret == 0)
		ret = fn(tr, arg);
	ulp_process_resume_all(tr->proc);
	return ret;
}

int ulp_transition_run(struct ulp_transition *tr, int timeout_ms)
{
	uint64_t start = ulp_now_us();
	uint64_t deadline = start + (uint64_t)timeout_ms * 1000u;
	int ret;

	for (unsigned round = 1;; round++) {
		ret = ulp_transition_try_complete(tr);
		if (tr->stats)
			tr->stats->rounds = round;
		if (ret != 0)
			break;
		if (ulp_now_us() >= deadline) {
			ret = ulp_error_prefix(-ETIMEDOUT, "transition did not complete in %d ms",
					       timeout_ms);
			break;
		}
		/* Give blocked threads time to leave the function. */
		ulp_process_poll(tr->proc, round < 10 ? 1 : 10);
	}
	if (tr->stats)
		tr->stats->total_us = ulp_now_us() - start;
	return ret < 0 ? ret : 0;
}
