// SPDX-License-Identifier: MIT
/*
 * apply_stop.c - the target of bench/run_apply_stop.sh: N worker threads
 * call as_work() in a loop, and each measures, independently of ulpd, the
 * longest time it could not make progress.
 *
 * Each worker reads CLOCK_MONOTONIC once per iteration (an iteration is
 * AS_CALLS_PER_ITER calls of as_work()) and keeps the largest lateness: the
 * time between two consecutive iterations, less the time it asked to sleep
 * if it slept in between.  A thread held in a ptrace stop, hijacked for a
 * remote call, or waiting for a CPU shows up as lateness; that is what the
 * application observes.  Lateness is kept per measurement window: "reset"
 * opens a window, "gaps" closes it and reports.
 *
 * Options (every thread runs before "ready" is printed):
 *   --threads N      worker threads (default 1)
 *   --busy-us B      with --sleep-us: run B microseconds, then sleep
 *   --sleep-us S     sleep S microseconds (clock_nanosleep) after each burst;
 *                    0 (default): the workers never sleep
 *   --sleepers M     M more threads that only sleep in clock_nanosleep() and
 *                    read(), not measured (default 0)
 *
 * Commands, one per line on stdin, one line of answer on stdout:
 *   reset            reset      (opens a new measurement window)
 *   gaps             gaps max_us=.. p50_us=.. p90_us=.. over_1ms=.. threads=.. stale=..
 *                    (per-worker largest lateness in the window: the largest,
 *                    the median and 90th percentile over workers, how many
 *                    exceeded 1 ms; "stale" workers made no iteration within
 *                    10 s of the request and are left out)
 *   pause            paused   (every worker has stopped calling as_work()
 *                    and sleeps, 1 ms at a time, until "resume")
 *   resume           resumed
 *   check            check as_work(5)=R
 *   calls            calls=K  (as_work() calls by workers so far)
 *   quit             exits 0
 *
 * "pause" exists for the revert between two measured applies: ulpd reverts
 * only when no thread is inside the patch's slot, which never happens with
 * many busy threads calling the function on a loaded machine (see
 * docs/benchmarks.md).  Lateness is not measured across a pause.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "apply_stop.h"
#include "bench_clock.h"
#include "bench_target.h"

#define AS_CALLS_PER_ITER 16
#define AS_GAPS_TIMEOUT_NS (10ull * 1000000000ull)

struct worker {
	atomic_ullong last_ns; /* CLOCK_MONOTONIC of its last iteration */
	atomic_ullong max_late_ns; /* largest lateness in the current window */
	atomic_ulong calls;
	atomic_uint paused; /* the pause generation it has seen, while paused */
	unsigned idx;
} __attribute__((aligned(64)));

static struct worker *workers;
static unsigned nr_workers;
static unsigned long long busy_ns, sleep_ns;

/* A window opens when epoch changes; window_start is written first. */
static atomic_ullong window_start;
static atomic_uint epoch;
/* Non-zero: a pause generation, workers keep off as_work(). */
static atomic_uint pause_gen;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned my_epoch = atomic_load_explicit(&epoch, memory_order_acquire);
	unsigned long long prev = bench_now_ns(), expect = 0, max = 0, burst_start = prev;
	unsigned long x = w->idx;

	for (;;) {
		unsigned long long now, due;
		unsigned e, pg = atomic_load_explicit(&pause_gen, memory_order_acquire);

		if (pg) {
			atomic_store_explicit(&w->paused, pg, memory_order_release);
			bench_sleep_ns(1000000);
			/* A pause breaks the window: start afresh. */
			prev = bench_now_ns();
			expect = 0;
			burst_start = prev;
			continue;
		}
		now = bench_now_ns();
		due = prev + expect;
		e = atomic_load_explicit(&epoch, memory_order_acquire);

		if (e != my_epoch) {
			unsigned long long ws =
				atomic_load_explicit(&window_start, memory_order_relaxed);

			/* Of a gap that straddles the window's start, count
			 * only the part inside the window. */
			my_epoch = e;
			max = 0;
			atomic_store_explicit(&w->max_late_ns, 0, memory_order_relaxed);
			if (due < ws)
				due = ws;
		}
		if (now > due && now - due > max) {
			max = now - due;
			atomic_store_explicit(&w->max_late_ns, max, memory_order_relaxed);
		}
		prev = now;
		expect = 0;
		atomic_store_explicit(&w->last_ns, now, memory_order_release);
		for (int i = 0; i < AS_CALLS_PER_ITER; i++)
			x = as_work(x);
		atomic_fetch_add_explicit(&w->calls, AS_CALLS_PER_ITER, memory_order_relaxed);
		if (sleep_ns && now - burst_start >= busy_ns) {
			/* A stop interrupts the sleep; the lateness check sees it anyway. */
			bench_sleep_ns(sleep_ns);
			expect = sleep_ns;
			burst_start = bench_now_ns();
		}
	}
	return NULL;
}

static void *sleeper_main(void *arg)
{
	(void)arg;
	for (;;)
		bench_sleep_ns(50ull * 1000000ull);
	return NULL;
}

static void *reader_main(void *arg)
{
	int fds[2];
	char c;

	(void)arg;
	if (pipe(fds))
		bt_die("pipe", errno);
	/* Nobody writes: read() blocks for good, restarted after each stop. */
	for (;;)
		if (read(fds[0], &c, 1) == 0)
			break;
	return NULL;
}

static void cmd_reset(void)
{
	atomic_store_explicit(&window_start, bench_now_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
	printf("reset\n");
}

static void cmd_gaps(void)
{
	unsigned long long q = bench_now_ns(), *late = calloc(nr_workers, sizeof(*late));
	unsigned n = 0, stale = 0, over = 0;

	if (!late)
		bt_die("calloc", ENOMEM);
	/* Wait until every worker has run an iteration since the request, so
	 * that a stop still under way when the window closes is counted. */
	for (unsigned i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];

		if (!bt_wait_since(&w->last_ns, q, AS_GAPS_TIMEOUT_NS)) {
			stale++;
			continue;
		}
		late[n] = atomic_load_explicit(&w->max_late_ns, memory_order_relaxed);
		over += late[n] > 1000000ull;
		n++;
	}
	qsort(late, n, sizeof(*late), bt_cmp_ull);
	if (n)
		printf("gaps max_us=%llu p50_us=%llu p90_us=%llu over_1ms=%u threads=%u stale=%u\n",
		       late[n - 1] / 1000, late[(n - 1) / 2] / 1000, late[(n - 1) * 9 / 10] / 1000,
		       over, n, stale);
	else
		printf("gaps max_us=0 p50_us=0 p90_us=0 over_1ms=0 threads=0 stale=%u\n", stale);
	free(late);
}

static void cmd_pause(void)
{
	static unsigned gen;
	unsigned long long t0 = bench_now_ns();
	unsigned late = 0;

	if (++gen == 0)
		gen = 1;
	atomic_store_explicit(&pause_gen, gen, memory_order_release);
	for (unsigned i = 0; i < nr_workers; i++) {
		while (atomic_load_explicit(&workers[i].paused, memory_order_acquire) != gen &&
		       bench_now_ns() - t0 < AS_GAPS_TIMEOUT_NS)
			bench_sleep_ns(100000);
		late += atomic_load_explicit(&workers[i].paused, memory_order_acquire) != gen;
	}
	if (late)
		printf("error %u workers did not pause within 10 s\n", late);
	else
		printf("paused\n");
}

int main(int argc, char **argv)
{
	unsigned long long sleepers = 0;
	char line[256];

	bt_prog = "apply_stop";
	nr_workers = 1;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];

		if (i + 1 >= argc) {
			fprintf(stderr, "apply_stop: %s needs a value\n", opt);
			return 2;
		}
		if (strcmp(opt, "--threads") == 0)
			nr_workers = (unsigned)bt_parse_num(opt, argv[++i]);
		else if (strcmp(opt, "--busy-us") == 0)
			busy_ns = bt_parse_num(opt, argv[++i]) * 1000ull;
		else if (strcmp(opt, "--sleep-us") == 0)
			sleep_ns = bt_parse_num(opt, argv[++i]) * 1000ull;
		else if (strcmp(opt, "--sleepers") == 0)
			sleepers = bt_parse_num(opt, argv[++i]);
		else {
			fprintf(stderr, "apply_stop: unknown option %s\n", opt);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Sleeps end when asked, not up to 50 us later (inherited by threads). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	workers = aligned_alloc(64, sizeof(*workers) * (nr_workers ? nr_workers : 1));
	if (!workers)
		bt_die("aligned_alloc", ENOMEM);
	memset(workers, 0, sizeof(*workers) * (nr_workers ? nr_workers : 1));
	for (unsigned i = 0; i < nr_workers; i++) {
		workers[i].idx = i;
		bt_start_thread(worker_main, &workers[i]);
	}
	for (unsigned long long i = 0; i < sleepers; i++)
		bt_start_thread(i % 2 ? reader_main : sleeper_main, NULL);
	/* Ready once every worker has iterated. */
	for (unsigned i = 0; i < nr_workers; i++)
		while (!atomic_load_explicit(&workers[i].calls, memory_order_relaxed))
			bench_sleep_ns(1000000);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "reset", 5) == 0) {
			cmd_reset();
		} else if (strncmp(line, "gaps", 4) == 0) {
			cmd_gaps();
		} else if (strncmp(line, "pause", 5) == 0) {
			cmd_pause();
		} else if (strncmp(line, "resume", 6) == 0) {
			atomic_store_explicit(&pause_gen, 0, memory_order_release);
			printf("resumed\n");
		} else if (strncmp(line, "check", 5) == 0) {
			printf("check as_work(5)=%lu\n", as_work(5));
		} else if (strncmp(line, "calls", 5) == 0) {
			unsigned long total = 0;

			for (unsigned i = 0; i < nr_workers; i++)
				total += atomic_load_explicit(&workers[i].calls,
							      memory_order_relaxed);
			printf("calls=%lu\n", total);
		} else if (strncmp(line, "quit", 4) == 0) {
			return 0;
		} else {
			printf("error unknown command\n");
		}
	}
	return 0;
}
