/* SPDX-License-Identifier: MIT */
#include "transition.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "error.h"
#include "memory.h"
#include "patch.h"
#include "process.h"
#include "procfs.h"
#include "rt_abi.h"
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

static struct ulp_thread_info *ulp_thread_info_get(struct ulp_pending_transition *pt, pid_t tid)
{
	struct ulp_thread_info *n;

	for (size_t i = 0; i < pt->nr_threads; i++)
		if (pt->threads[i].tid == tid)
			return &pt->threads[i];
	n = realloc(pt->threads, (pt->nr_threads + 1) * sizeof(*n));
	if (!n)
		return NULL;
	pt->threads = n;
	n = &pt->threads[pt->nr_threads++];
	*n = (struct ulp_thread_info){ .tid = tid };
	return n;
}

/* Which function being changed holds pc (names owned by the patch). */
static void ulp_blocker_name(const struct ulp_applied_patch *ap, uint64_t pc,
			     struct ulp_thread_info *ti)
{
	ti->func = ti->object = NULL;
	for (size_t o = 0; o < ap->nr_objs; o++) {
		const struct ulp_applied_object *os = &ap->objs[o];

		for (size_t f = 0; f < os->nr_funcs; f++) {
			const struct ulp_applied_func *top = &os->funcs[f];

			/* this patch's version, the original, or one of the versions below */
			for (const struct ulp_applied_func *fs = top; fs; fs = fs->below) {
				const struct ulp_prologue *pr = &fs->prologue;

				if ((pc >= fs->old_addr &&
				     pc < fs->old_addr + (fs->old_size ? fs->old_size : 1)) ||
				    (pc >= pr->tramp_addr && pc < pr->tramp_addr + pr->tramp_len) ||
				    (pc >= fs->new_addr && pc < fs->new_addr + fs->new_size)) {
					ti->func = top->info->old_name;
					ti->object = os->name;
					return;
				}
			}
		}
	}
}

static void ulp_transition_note(struct ulp_transition *tr, const struct ulp_thread *th,
				bool switched, uint64_t blocker)
{
	struct ulp_thread_info *ti;

	if (!tr->pending)
		return;
	ti = ulp_thread_info_get(tr->pending, th->tid);
	if (!ti)
		return;
	ti->switched = switched;
	if (th->fs_base)
		ti->fs_base = th->fs_base;
	ti->blocker = blocker;
	if (blocker)
		ulp_blocker_name(tr->pending->ap, blocker, ti);
	else
		ti->func = ti->object = NULL;
}

/* Switched in this transition, as an earlier check or the thread itself said. */
static bool ulp_recorded_switched(const struct ulp_transition *tr, pid_t tid)
{
	const struct ulp_pending_transition *pt = tr->pending;

	for (size_t i = 0; pt && i < pt->nr_threads; i++)
		if (pt->threads[i].tid == tid)
			return pt->threads[i].switched;
	return false;
}

/*
 * Threads that switched themselves (runtime/self_switch.c) and said so:
 * switched without a stop.
 */
static void ulp_transition_note_self_switched(struct ulp_transition *tr)
{
	__typeof__(((struct ulp_rt_info *)0)->self_done[0]) *done;
	uint64_t base = tr->target->rt_info;
	uint32_t nr;

	if (!tr->target->self_check_entry || !base ||
	    ulp_mem_read(tr->proc, base + offsetof(struct ulp_rt_info, self_done_nr), &nr,
			 sizeof(nr)) < 0 ||
	    nr == 0)
		return;
	if (nr > ULP_RT_SELF_DONE_MAX)
		nr = ULP_RT_SELF_DONE_MAX;
	done = malloc(nr * sizeof(*done));
	if (!done || ulp_mem_read(tr->proc, base + offsetof(struct ulp_rt_info, self_done), done,
				  nr * sizeof(*done)) < 0) {
		free(done);
		return;
	}
	for (uint32_t i = 0; i < nr; i++) {
		struct ulp_thread *th;

		if (done[i].gen != tr->to_state || done[i].tid <= 0)
			continue;
		th = ulp_process_find_thread(tr->proc, done[i].tid);
		if (th && !th->gone)
			ulp_transition_note(tr, th, true, 0);
	}
	free(done);
}

/*
 * Threads seen in an earlier attach: their TLS can be read again without
 * stopping them.  Threads gone are forgotten.
 */
static void ulp_transition_recall(struct ulp_transition *tr)
{
	struct ulp_pending_transition *pt = tr->pending;
	size_t j = 0;

	if (!pt)
		return;
	for (size_t i = 0; i < pt->nr_threads; i++) {
		struct ulp_thread *th = ulp_process_find_thread(tr->proc, pt->threads[i].tid);

		if (!th || th->gone)
			continue;
		if (!th->fs_base)
			th->fs_base = pt->threads[i].fs_base;
		pt->threads[j++] = pt->threads[i];
	}
	pt->nr_threads = j;
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
	/*
	 * In the runtime's self-switch entry outside its counted part, the
	 * thread may have chosen the version it will run: not now.
	 */
	for (int i = 0; i < 2; i++) {
		if (th->regs.rip >= tr->target->self_uncounted[i][0] &&
		    th->regs.rip < tr->target->self_uncounted[i][1]) {
			*blocker = th->regs.rip;
			return 0;
		}
	}
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
	if (r >= 0)
		ulp_transition_note(c->tr, th, r == 1, r == 0 ? blocker : 0);
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
	ulp_transition_recall(tr);
	ulp_transition_note_self_switched(tr);
	todo = calloc(p->nr_threads + 1, sizeof(*todo));
	if (!todo) {
		ret = ulp_errorf(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nr_threads; i++) {
		struct ulp_thread *th = p->threads[i];

		if (th->gone)
			continue;
		if (!ulp_recorded_switched(tr, th->tid) && !ulp_thread_switched(tr, th))
			todo[nr++] = th->tid;
		else
			ulp_transition_note(tr, th, true, 0);
	}
	ulp_trace("pass: %zu threads to check", nr);
	ret = ulp_visit_pass(p, todo, &nr, &v, ulp_now_us() + ULP_PASS_US);
	ulp_trace("pass done: %zu left, all=%d", nr, c.all);
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

static uint32_t ulp_self_switched_count(struct ulp_transition *tr)
{
	uint32_t nr = 0;

	ulp_mem_read(tr->proc, tr->target->rt_info + offsetof(struct ulp_rt_info, self_done_nr),
		     &nr, sizeof(nr));
	return nr;
}

/*
 * Threads that run into a function being changed switch themselves
 * (runtime/self_switch.c) as soon as they get a CPU; stopping them would
 * also have to wait for that, and slows them down.  Wait while they are
 * still reporting (quiet for 10 ms: done; nobody at all within 2 ms: done).
 */
#define ULP_SELF_SETTLE_MAX_US 200000u
#define ULP_SELF_SETTLE_QUIET_US 10000u

/*
 * Could a thread not switched yet still switch itself?  Only one that runs
 * (or waits for a CPU): a sleeper must be checked by ulpd.
 */
static bool ulp_unswitched_may_run(struct ulp_transition *tr)
{
	char buf[512];

	ulp_transition_note_self_switched(tr);
	for (size_t i = 0; i < tr->proc->nr_threads; i++) {
		struct ulp_thread *th = tr->proc->threads[i];
		const char *st;

		if (th->gone || ulp_recorded_switched(tr, th->tid))
			continue;
		st = ulp_proc_stat_fields(th->tid, buf, sizeof(buf));
		if (st && *st == 'R')
			return true;
	}
	return false;
}

static void ulp_self_switch_settle(struct ulp_transition *tr, uint64_t deadline)
{
	uint64_t start = ulp_now_us(), last_change = start, now;
	uint32_t seen;

	if (!tr->target->self_check_entry || !tr->target->rt_info)
		return;
	seen = ulp_self_switched_count(tr);
	for (now = start; now - start < ULP_SELF_SETTLE_MAX_US && now < deadline;
	     now = ulp_now_us()) {
		uint32_t n;

		ulp_process_poll(tr->proc, 1);
		n = ulp_self_switched_count(tr);
		if (n != seen) {
			seen = n;
			last_change = ulp_now_us();
			if (!ulp_unswitched_may_run(tr))
				break; /* the rest sleep: over to ulpd's checks */
		} else if (ulp_now_us() - last_change >=
			   (seen ? ULP_SELF_SETTLE_QUIET_US : ULP_SELF_SETTLE_QUIET_US / 5)) {
			break;
		}
	}
}

int ulp_transition_run(struct ulp_transition *tr, int budget_ms)
{
	uint64_t start = ulp_now_us();
	uint64_t deadline = start + (uint64_t)budget_ms * 1000u;
	int ret;

	for (unsigned round = 1;; round++) {
		ulp_self_switch_settle(tr, deadline);
		ret = ulp_transition_try_complete(tr);
		if (tr->stats)
			tr->stats->rounds += 1;
		if (ret != 0 || ulp_now_us() >= deadline)
			break;
		/* Give blocked threads time to leave the function. */
		ulp_process_poll(tr->proc, round < 10 ? 1 : 10);
	}
	if (tr->stats)
		tr->stats->total_us += ulp_now_us() - start;
	return ret;
}

static int ulp_transition_force_visit(struct ulp_process *p, struct ulp_thread *th, void *arg)
{
	struct ulp_transition *tr = arg;
	int ret;

	(void)p;
	if (!th->regs.fs_base)
		return 0;
	ret = ulp_thread_write_state(tr, th, tr->to_state);
	if (ret == -EFAULT || ret == -ESRCH)
		return 0; /* exiting */
	if (ret == 0)
		ulp_transition_note(tr, th, true, 0);
	return ret;
}

int ulp_transition_force_all(struct ulp_transition *tr)
{
	struct ulp_visit v = { .fn = ulp_transition_force_visit, .arg = tr };

	return ulp_visit_all(tr->proc, &v, 10000);
}

int ulp_self_checks_wait(struct ulp_target *t, struct ulp_process *p, int timeout_ms)
{
	uint64_t deadline = ulp_now_us() + (uint64_t)timeout_ms * 1000u;
	uint32_t running;
	int ret;

	if (!t->checks_running)
		return 0;
	for (;;) {
		ret = ulp_mem_read(p, t->checks_running, &running, sizeof(running));
		if (ret < 0 || running == 0)
			return ret;
		if (ulp_now_us() > deadline)
			return ulp_errorf(-ETIMEDOUT,
					  "%u threads of process %d stay in the self-switch check",
					  running, p->pid);
		ulp_process_poll(p, 1);
	}
}

/* Forget who said it switched, entries included: generations are reused. */
static int ulp_self_done_clear(struct ulp_target *t, struct ulp_process *p)
{
	uint64_t base = t->rt_info;
	uint32_t nr = 0, zero = 0;
	void *blank;
	size_t len;
	int ret =
		ulp_mem_read(p, base + offsetof(struct ulp_rt_info, self_done_nr), &nr, sizeof(nr));

	if (ret < 0)
		return ret;
	if (nr > ULP_RT_SELF_DONE_MAX)
		nr = ULP_RT_SELF_DONE_MAX;
	len = nr * sizeof(((struct ulp_rt_info *)0)->self_done[0]);
	blank = calloc(1, len ? len : 1);
	if (!blank)
		return ulp_errorf(-ENOMEM, "out of memory");
	ret = len ? ulp_mem_write(p, base + offsetof(struct ulp_rt_info, self_done), blank, len)
		  : 0;
	free(blank);
	if (ret == 0)
		ret = ulp_mem_write(p, base + offsetof(struct ulp_rt_info, self_done_nr), &zero,
				    sizeof(zero));
	return ret;
}

int ulp_self_switch_publish(struct ulp_target *t, struct ulp_process *p)
{
	const struct ulp_pending_transition *pt = t->transition;
	uint64_t base = t->rt_info;
	struct ulp_addr_range *busy = NULL;
	uint32_t off = 0, state = pt ? ULP_RT_SELF_ACTIVE | pt->to_state : 0, was = 0, nr32;
	size_t nr = 0;
	int ret;

	if (!t->self_check_entry || !base)
		return 0;
	ret = ulp_mem_read(p, base + offsetof(struct ulp_rt_info, self_state), &was, sizeof(was));
	/* first off: threads in the check then give up instead of reading half-written ranges */
	if (ret == 0)
		ret = ulp_mem_write(p, base + offsetof(struct ulp_rt_info, self_state), &off,
				    sizeof(off));
	/*
	 * A thread past its last look at self_state may still switch: wait for
	 * every check under way to end before anything it read changes.  If
	 * they do not end, threads stop switching themselves for now.
	 */
	if (ret == 0 && ulp_self_checks_wait(t, p, 100) < 0) {
		ulp_error_clear();
		return 0;
	}
	/* the same transition (an object came or went): who switched still counts */
	if (ret == 0 && was != state)
		ret = ulp_self_done_clear(t, p);
	if (ret < 0 || !pt)
		return ret;
	ret = ulp_busy_ranges(pt->ap, pt->patching, &busy, &nr);
	if (ret < 0)
		return ret;
	if (nr > ULP_RT_SELF_RANGES) {
		free(busy); /* too many: ulpd's own checks switch every thread */
		return 0;
	}
	for (size_t i = 0; i < nr && ret == 0; i++) {
		uint64_t r[2] = { busy[i].start, busy[i].end };

		ret = ulp_mem_write(
			p, base + offsetof(struct ulp_rt_info, self_ranges) + i * sizeof(r), r,
			sizeof(r));
	}
	free(busy);
	nr32 = (uint32_t)nr;
	if (ret == 0)
		ret = ulp_mem_write(p, base + offsetof(struct ulp_rt_info, self_nr), &nr32,
				    sizeof(nr32));
	if (ret == 0)
		ret = ulp_mem_write(p, base + offsetof(struct ulp_rt_info, self_state), &state,
				    sizeof(state));
	return ret;
}
