// SPDX-License-Identifier: MIT
/*
 * ulp_bench_unwind_cost - what a remote unwind of one stopped thread costs,
 * per frame, with ulp's unwinder (libpatch/unwind.c) and with
 * libunwind-ptrace as shipped.
 *
 *   ulp_bench_unwind_cost [ITERS] [DEPTH...]   (default 10000; 10 50)
 *   -> one markdown table on stdout, progress on stderr
 *
 * Per depth, a forked child recurses DEPTH times through a noinline
 * function and blocks in pause(); it is seized and interrupted once and
 * unwound, stopped, over and over:
 *   ulp warm    ulp_unwind_thread with one unwinder: what a transition pays
 *               for the second and later threads (and later passes);
 *   ulp cold    ulp_unwinder_invalidate before each unwind: what the first
 *               thread of a transition pays;
 *   upt cache   libunwind-ptrace's own accessors (_UPT_*), UNW_CACHE_GLOBAL;
 *   upt none    libunwind-ptrace as shipped (_UPT_*, UNW_CACHE_NONE).
 * The ip lists of all four must be equal, or the run fails.  The libunwind-
 * ptrace variants run for at most ITERS unwinds or about 2 s.  Every wait
 * has a timeout; the child is killed by its PID, and dies with us
 * (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <libunwind-ptrace.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "unwind.h"

#define MAX_FRAMES 1024
#define UPT_BUDGET_NS 2000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t parked = 1;

static __attribute__((noinline)) void park(int fd)
{
	char c = 'r';

	if (write(fd, &c, 1) != 1)
		_exit(2);
	while (parked)
		pause();
}

static __attribute__((noinline)) int chain(int n, int fd)
{
	int r;

	if (n <= 1) {
		park(fd);
		return 0;
	}
	r = chain(n - 1, fd);
	/* Keeps the call a call, not a tail jump. */
	__asm__ volatile("" : "+r"(r)::"memory");
	return r + 1;
}

static int wait_stop(pid_t pid, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int status;

	while (now_ns() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG | __WALL);

		if (r == pid)
			return WIFSTOPPED(status) ? 0 : -ECHILD;
		if (r < 0)
			return -errno;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static pid_t start_child(int depth)
{
	struct pollfd pfd;
	int fds[2];
	pid_t pid;
	char c;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		chain(depth, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	if (pid < 0 || poll(&pfd, 1, 10000) != 1 || read(fds[0], &c, 1) != 1) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		close(fds[0]);
		return -1;
	}
	close(fds[0]);
	return pid;
}

/* One unwind with libunwind-ptrace's accessors, as a debugger would. */
static int upt_unwind(unw_addr_space_t as, void *upt, uint64_t *ips, size_t *nr)
{
	unw_cursor_t c;
	size_t n = 0;
	int ret;

	if (unw_init_remote(&c, as, upt) < 0)
		return -EIO;
	do {
		unw_word_t ip;

		if (n == MAX_FRAMES)
			return -E2BIG;
		unw_get_reg(&c, UNW_REG_IP, &ip);
		ips[n++] = ip;
		ret = unw_step(&c);
	} while (ret > 0);
	*nr = n;
	return ret < 0 ? -EIO : 0;
}

struct result {
	double ns_unwind, ns_frame;
	unsigned long iters;
};

static int same(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	return na == nb && memcmp(a, b, na * sizeof(*a)) == 0;
}

static int measure_upt(pid_t pid, int policy, unsigned long iters, const uint64_t *ref, size_t nref,
		       struct result *r)
{
	unw_addr_space_t as = unw_create_addr_space(&_UPT_accessors, 0);
	void *upt = _UPT_create(pid);
	uint64_t ips[MAX_FRAMES];
	uint64_t t0, t;
	unsigned long i;
	size_t n = 0;
	int ret = 0;

	if (!as || !upt) {
		ret = -ENOMEM;
		goto out;
	}
	unw_set_caching_policy(as, policy);
	t0 = now_ns();
	t = t0;
	for (i = 0; i < iters && t - t0 < UPT_BUDGET_NS; i++) {
		ret = upt_unwind(as, upt, ips, &n);
		if (ret < 0 || !same(ips, n, ref, nref)) {
			fprintf(stderr, "libunwind-ptrace gives another stack (%d, %zu frames)\n",
				ret, n);
			ret = -EPROTO;
			goto out;
		}
		t = now_ns();
	}
	r->iters = i;
	r->ns_unwind = (double)(t - t0) / (double)i;
	r->ns_frame = r->ns_unwind / (double)nref;
out:
	if (upt)
		_UPT_destroy(upt);
	if (as)
		unw_destroy_addr_space(as);
	return ret;
}

static int measure_ulp(struct ulp_unwinder *u, pid_t pid, const struct user_regs_struct *regs,
		       bool cold, unsigned long iters, const uint64_t *ref, size_t nref,
		       struct result *r)
{
	struct ulp_unwind_stats before, after;
	uint64_t ips[MAX_FRAMES];
	uint64_t t0;
	size_t n = 0;

	ulp_unwinder_get_stats(u, &before);
	t0 = now_ns();
	for (unsigned long i = 0; i < iters; i++) {
		if (cold)
			ulp_unwinder_invalidate(u);
		if (ulp_unwind_thread(u, pid, regs, ips, MAX_FRAMES, &n) < 0 ||
		    !same(ips, n, ref, nref)) {
			fprintf(stderr, "ulp gives another stack (%zu frames): %s\n", n,
				ulp_last_error());
			return -EPROTO;
		}
	}
	r->iters = iters;
	r->ns_unwind = (double)(now_ns() - t0) / (double)iters;
	r->ns_frame = r->ns_unwind / (double)nref;
	ulp_unwinder_get_stats(u, &after);
	fprintf(stderr,
		"  ulp %s: per unwind %.2f page reads, %.2f maps reads, %.2f table lookups, %.2f fallback lookups\n",
		cold ? "cold" : "warm",
		(double)(after.page_reads - before.page_reads) / (double)iters,
		(double)(after.maps_reads - before.maps_reads) / (double)iters,
		(double)(after.table_lookups - before.table_lookups) / (double)iters,
		(double)(after.fallback_lookups - before.fallback_lookups) / (double)iters);
	return 0;
}

static int bench_depth(int depth, unsigned long iters, FILE *out)
{
	struct result warm, cold, upt_cache, upt_none;
	struct ulp_unwinder *u = NULL;
	struct user_regs_struct regs;
	uint64_t ref[MAX_FRAMES];
	size_t nref = 0;
	uint64_t t0, first_ns;
	pid_t pid;
	int ret;

	pid = start_child(depth);
	if (pid < 0) {
		fprintf(stderr, "cannot start the target\n");
		return -1;
	}
	ret = -1;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0 || ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 ||
	    wait_stop(pid, 10000) < 0 || ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0) {
		fprintf(stderr, "cannot stop the target %d: %s\n", pid, strerror(errno));
		goto out;
	}
	if (ulp_unwinder_create(pid, &u) < 0)
		goto out;
	t0 = now_ns();
	if (ulp_unwind_thread(u, pid, &regs, ref, MAX_FRAMES, &nref) < 0) {
		fprintf(stderr, "ulp cannot unwind the target: %s\n", ulp_last_error());
		goto out;
	}
	first_ns = now_ns() - t0;
	fprintf(stderr, "depth %d: %zu frames\n", depth, nref);
	if (measure_ulp(u, pid, &regs, false, iters, ref, nref, &warm) < 0 ||
	    measure_ulp(u, pid, &regs, true, iters / 10 ? iters / 10 : 1, ref, nref, &cold) < 0 ||
	    measure_upt(pid, UNW_CACHE_GLOBAL, iters, ref, nref, &upt_cache) < 0 ||
	    measure_upt(pid, UNW_CACHE_NONE, iters, ref, nref, &upt_none) < 0)
		goto out;
	fprintf(out, "| %d | %zu | ulp warm | %lu | %.0f | %.0f |\n", depth, nref, warm.iters,
		warm.ns_unwind, warm.ns_frame);
	fprintf(out, "| %d | %zu | ulp cold (invalidated) | %lu | %.0f | %.0f |\n", depth, nref,
		cold.iters, cold.ns_unwind, cold.ns_frame);
	fprintf(out, "| %d | %zu | ulp first unwind of a new unwinder | 1 | %.0f | %.0f |\n", depth,
		nref, (double)first_ns, (double)first_ns / (double)nref);
	fprintf(out, "| %d | %zu | libunwind-ptrace, UNW_CACHE_GLOBAL | %lu | %.0f | %.0f |\n",
		depth, nref, upt_cache.iters, upt_cache.ns_unwind, upt_cache.ns_frame);
	fprintf(out,
		"| %d | %zu | libunwind-ptrace as shipped (UNW_CACHE_NONE) | %lu | %.0f | %.0f |\n",
		depth, nref, upt_none.iters, upt_none.ns_unwind, upt_none.ns_frame);
	ret = 0;
out:
	ulp_unwinder_destroy(u);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, __WALL);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned long iters = argc > 1 ? strtoul(argv[1], NULL, 0) : 10000;
	static const int defaults[] = { 10, 50 };
	int ret = 0;

	if (!iters)
		iters = 1;
	/* The children die with us; never let a stuck wait hold us forever. */
	alarm(600);
	printf("| depth | frames | unwinder | unwinds | ns per unwind | ns per frame |\n");
	printf("|---:|---:|---|---:|---:|---:|\n");
	fflush(stdout);
	if (argc > 2) {
		for (int i = 2; i < argc && ret == 0; i++)
			ret = bench_depth(atoi(argv[i]), iters, stdout);
	} else {
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && ret == 0; i++)
			ret = bench_depth(defaults[i], iters, stdout);
	}
	return ret ? 1 : 0;
}
