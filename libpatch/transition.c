/* SPDX-License-Identifier: MIT */
#include "transition.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int ulp_transition_next_gen(struct ulp_target *t, struct ulp_process *p, unsigned char *gen)
{
	unsigned char now;
	int ret = ulp_mem_read(p, t->tls_init, &now, 1);

	/* every thread holds the init image's value once a transition completed */
	if (ret == 0)
		*gen = (unsigned char)(now + 1);
	return ret;
}

int ulp_transition_start(struct ulp_transition *tr)
{
	/* New threads copy the TLS init image: make them start switched. */
	return ulp_mem_write(tr->proc, tr->target->tls_init, &tr->to_state, 1);
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

		if (ulp_addr_in_ranges(tr->busy, tr->nr_busy, ip)) {
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

/* A thread that does not report within a pass is checked in the next. */
#define ULP_PASS_US 1000000u

struct ulp_check_ctx {
	struct ulp_transition *tr;
	uint64_t *ips;
	bool all;
};

static int ulp_transition_visit(struct ulp_process *p, struct ulp_thread *th, void *arg)
{
	struct ulp_check_ctx *c = arg;
	uint64_t blocker = 0;
	int r = ulp_transition_check_thread(c->tr, th, c->ips, &blocker);

	(void)p;
	if (r == 0) {
		c->all = false;
		ulp_errorf(-EBUSY, "thread %d is still running code being changed (at 0x%llx)",
			   th->tid, (unsigned long long)blocker);
	}
	return r < 0 ? r : 0;
}

/*
 * One pass over the threads not yet switched, a few stopped at a time,
 * each checked and resumed as soon as it reports.
 */
int ulp_transition_try_complete(struct ulp_transition *tr)
{
	struct ulp_process *p = tr->proc;
	struct ulp_check_ctx c = { .tr = tr, .all = true };
	struct ulp_visit v = { .fn = ulp_transition_visit, .arg = &c };
	pid_t *todo = NULL;
	size_t nr = 0;
	int ret = 0;

	c.ips = malloc(ULP_MAX_FRAMES * sizeof(*c.ips));
	if (!c.ips)
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
			todo[nr++] = th->tid;
	}
	ret = ulp_visit_pass(p, todo, &nr, &v, ulp_now_us() + ULP_PASS_US);
	if (nr > 0)
		c.all = false;
out:
	free(todo);
	free(c.ips);
	if (p->exited)
		return ulp_errorf(-ESRCH, "process %d exited", p->pid);
	if (ret < 0)
		return ret;
	return c.all ? 1 : 0;
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
