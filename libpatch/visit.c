/* SPDX-License-Identifier: MIT */
#include "visit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "error.h"
#include "process.h"

/*
 * Threads visited at once.  Those stopped together wait for one another's
 * visits, so a few at a time bound every stop by a few visits; a thread
 * that is slow to acknowledge (runnable but waiting for a CPU) stops
 * counting against the window, so a crowd of busy threads is still waited
 * for in parallel.
 */
#define ULP_VISIT_WINDOW 4
#define ULP_VISIT_SLOW_US 2000u

struct ulp_visit_slot {
	uint64_t since; /* when it was interrupted */
	bool asked; /* interrupted (or found stopped) */
	bool done;
	bool again; /* fn wants it in a later pass */
};

bool ulp_addr_in_ranges(const struct ulp_addr_range *ranges, size_t nr, uint64_t addr)
{
	for (size_t i = 0; i < nr; i++)
		if (addr >= ranges[i].start && addr < ranges[i].end)
			return true;
	return false;
}

/*
 * /proc/PID/task/TID/syscall names the user pc of a thread asleep in the
 * kernel ("running" otherwise).  Such a thread can only go on from there,
 * so if that is outside every range it needs no stop at all.
 */
static bool ulp_thread_asleep_outside(const struct ulp_process *p, pid_t tid,
				      const struct ulp_visit *v)
{
	char path[96], buf[256], *last;
	unsigned long long pc;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", p->pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (strncmp(buf, "running", 7) == 0)
		return false;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	last = strrchr(buf, ' ');
	if (!last || sscanf(last + 1, "%llx", &pc) != 1)
		return false;
	return !ulp_addr_in_ranges(v->ranges, v->nr_ranges, pc);
}

/* Visit a thread that has reported its stop, and resume it. */
static int ulp_visit_reported(struct ulp_process *p, struct ulp_thread *th,
			      const struct ulp_visit *v, struct ulp_visit_slot *s)
{
	int r = ulp_thread_read_regs(th);

	if (r == 0)
		r = v->fn(p, th, v->arg);
	ulp_thread_resume(p, th);
	s->done = true;
	if (r == -EAGAIN)
		s->again = true;
	return r == -EAGAIN || r == -ESRCH ? 0 : r;
}

int ulp_visit_pass(struct ulp_process *p, pid_t *tids, size_t *nr, const struct ulp_visit *v,
		   uint64_t deadline_us)
{
	size_t n = *nr, next = 0, left = n, kept = 0;
	struct ulp_visit_slot *s = calloc(n + 1, sizeof(*s));
	int ret = 0;

	if (!s)
		return ulp_errorf(-ENOMEM, "out of memory");
	while (left > 0) {
		uint64_t now = ulp_now_us();
		unsigned in_window = 0;

		for (size_t i = 0; i < next; i++)
			if (s[i].asked && !s[i].done && now - s[i].since < ULP_VISIT_SLOW_US)
				in_window++;
		for (; next < n && in_window < ULP_VISIT_WINDOW; next++) {
			struct ulp_thread *th = ulp_process_find_thread(p, tids[next]);

			if (!th || th->gone ||
			    (v->ranges && !th->stopped &&
			     ulp_thread_asleep_outside(p, th->tid, v))) {
				s[next].done = true;
				left--;
				continue;
			}
			s[next].since = now;
			s[next].asked = true;
			th->want_stop = true;
			if (!th->stopped && ptrace(PTRACE_INTERRUPT, th->tid, 0, 0) < 0) {
				th->want_stop = false;
				s[next].done = true;
				left--;
				continue;
			}
			in_window++;
		}
		for (size_t i = 0; i < next && ret == 0; i++) {
			struct ulp_thread *th;
			int r;

			if (s[i].done)
				continue;
			th = ulp_process_find_thread(p, tids[i]);
			ulp_thread_reap(p, th);
			if (!th->gone && !th->stopped)
				continue;
			if (!th->gone) {
				r = ulp_thread_settle_trap(p, th);
				if (r > 0)
					continue; /* reports again in a moment */
				if (r == 0) {
					ret = ulp_visit_reported(p, th, v, &s[i]);
					left--;
					continue;
				}
			}
			s[i].done = true;
			left--;
		}
		if (ret < 0 || !left || p->exited || ulp_now_us() > deadline_us)
			break;
		if (ulp_process_poll(p, 1) < 0)
			break;
	}
	/* Anything still asked to stop (end of the pass) must not stay stopped. */
	for (size_t i = 0; i < next; i++) {
		struct ulp_thread *th = ulp_process_find_thread(p, tids[i]);

		if (s[i].asked && !s[i].done && th)
			ulp_thread_resume(p, th);
	}
	for (size_t i = 0; i < n; i++)
		if (!s[i].done || s[i].again)
			tids[kept++] = tids[i];
	*nr = kept;
	free(s);
	if (p->exited)
		return ulp_errorf(-ESRCH, "process %d exited", p->pid);
	return ret;
}

int ulp_visit_all(struct ulp_process *p, const struct ulp_visit *v, int timeout_ms)
{
	uint64_t deadline = ulp_now_us() + (uint64_t)timeout_ms * 1000u;
	pid_t *tids = malloc((p->nr_threads + 1) * sizeof(*tids));
	size_t nr = 0;
	int ret = 0;

	if (!tids)
		return ulp_errorf(-ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nr_threads; i++)
		if (!p->threads[i]->gone && p->threads[i]->tid != p->own_tid)
			tids[nr++] = p->threads[i]->tid;
	while (nr > 0) {
		ret = ulp_visit_pass(p, tids, &nr, v, deadline);
		if (ret < 0 || nr == 0)
			break;
		if (ulp_now_us() > deadline) {
			ret = ulp_errorf(-ETIMEDOUT,
					 "thread %d of process %d was not visited in %d ms",
					 tids[0], p->pid, timeout_ms);
			break;
		}
		ulp_process_poll(p, 1);
	}
	free(tids);
	return ret;
}
