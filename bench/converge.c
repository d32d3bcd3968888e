// SPDX-License-Identifier: MIT
/*
 * converge.c - the target of bench/run_converge.sh: N worker threads that
 * spend most of their time inside cv_work(), the function
 * patch_converge.so replaces, so that a transition must switch threads
 * whose stacks nearly always hold the function being changed.
 *
 * A worker's loop: call cv_work(), which spins reading CLOCK_MONOTONIC for
 * --in-us (and, below a duty of 1, then sleeps inside the function), then
 * spin --out-us outside it (and sleep, likewise).  With the defaults a
 * worker is inside cv_work() 90% of the time.  --duty D makes each worker
 * run only a fraction D of the time, sleeping the rest, in both phases in
 * the same proportion, so the time inside the function stays at
 * in / (in + out) of the wall time: D = nproc / (2 N) keeps the machine
 * half loaded instead of oversubscribed.
 *
 * Each worker records which version of cv_work() its last call ran (the
 * function returns 1, the patch's version 2) and, for the first call that
 * ran another version than the call before it, when that version's body
 * started running (the function notes it): the moment the worker ran the
 * other version, as the application sees it.  (A thread held at the
 * function's entry, e.g. in ulpd's int3 handling, is counted when it goes
 * on, not when it arrived.)
 *
 * Options (every worker has run a call before "ready" is printed):
 *   --threads N    worker threads (default 64)
 *   --in-us I      CPU time per call inside cv_work() (default 90)
 *   --out-us O     CPU time outside it per iteration (default 10)
 *   --duty D       fraction of the time a worker runs (0 < D <= 1,
 *                  default 1: never sleeps)
 *
 * Commands, one per line on stdin, one line of answer on stdout:
 *   mark           mark at_us=T   (opens a window: switches are timed from
 *                  here; T is CLOCK_MONOTONIC in microseconds, the clock
 *                  of ulpd's ULP_TRACE lines)
 *   report         report v1=A v2=B changed=C first_us=F last_us=L
 *                  first_at_us=.. last_at_us=.. stale=S
 *                  once every worker has completed a call started after
 *                  the request (waits up to 10 s; "stale" workers did not
 *                  and are left out): how many workers' last call ran
 *                  version 1 and version 2, how many changed version since
 *                  the mark, and when the first and the last of those
 *                  changes happened, from the mark and as CLOCK_MONOTONIC
 *                  microseconds (-1 if none)
 *   round          round p50_us=.. max_us=.. stale=S   (after the request, when
 *                  each worker started its next call: the median and the
 *                  last; a bound under any way of switching threads that
 *                  needs each thread to run, as ptrace stops and threads
 *                  switching themselves both do; waits up to 10 s)
 *   stats          stats in_pct=P calls=K threads=N (share of the workers'
 *                  wall time spent inside cv_work() since they started)
 *   check          check version=V (cv_work() called from the command thread)
 *   quit           exits 0
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench_target.h"
#include "converge.h"

#define CV_REPORT_TIMEOUT_NS (10ull * 1000000000ull)

struct worker {
	/* start of the last call that has returned, and its version */
	atomic_ullong done_start_ns;
	atomic_ulong version;
	/* when the body of the first call that ran another version started */
	atomic_ullong change_ns;
	atomic_ullong in_ns; /* time inside cv_work() so far */
	atomic_ulong calls;
	/* the round it has seen, and the start of its first call in it */
	atomic_uint round_seen;
	atomic_ullong round_at_ns;
	unsigned long long start_ns;
} __attribute__((aligned(64)));

static struct worker *workers;
static unsigned nr_workers = 64;
static unsigned long long in_spin_ns = 90000, out_spin_ns = 10000, in_sleep_ns, out_sleep_ns;
static atomic_ullong mark_ns;
static atomic_uint round_gen;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned long prev = 0;

	w->start_ns = bench_now_ns();
	for (;;) {
		unsigned long long t0 = bench_now_ns(), t1, body = 0;
		unsigned g = atomic_load_explicit(&round_gen, memory_order_acquire);
		unsigned long v;

		if (g != atomic_load_explicit(&w->round_seen, memory_order_relaxed)) {
			atomic_store_explicit(&w->round_at_ns, t0, memory_order_relaxed);
			atomic_store_explicit(&w->round_seen, g, memory_order_release);
		}
		v = cv_work(in_spin_ns, in_sleep_ns, &body);

		t1 = bench_now_ns();
		if (v != prev) {
			if (prev)
				atomic_store_explicit(&w->change_ns, body, memory_order_relaxed);
			prev = v;
		}
		atomic_store_explicit(&w->version, v, memory_order_relaxed);
		atomic_store_explicit(
			&w->in_ns, atomic_load_explicit(&w->in_ns, memory_order_relaxed) + t1 - t0,
			memory_order_relaxed);
		atomic_fetch_add_explicit(&w->calls, 1, memory_order_relaxed);
		atomic_store_explicit(&w->done_start_ns, t0, memory_order_release);
		/* Outside the function. */
		while (bench_now_ns() - t1 < out_spin_ns)
			__asm__ volatile("pause" ::: "memory");
		if (out_sleep_ns)
			bench_sleep_ns(out_sleep_ns);
	}
	return NULL;
}

static void cmd_report(void)
{
	unsigned long long q = bench_now_ns(), m = atomic_load(&mark_ns);
	unsigned long long first = 0, last = 0;
	unsigned v1 = 0, v2 = 0, changed = 0, stale = 0;

	for (unsigned i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];
		unsigned long long c;

		if (!bt_wait_since(&w->done_start_ns, q, CV_REPORT_TIMEOUT_NS)) {
			stale++;
			continue;
		}
		switch (atomic_load_explicit(&w->version, memory_order_relaxed)) {
		case CV_OLD_VERSION:
			v1++;
			break;
		case CV_NEW_VERSION:
			v2++;
			break;
		}
		c = atomic_load_explicit(&w->change_ns, memory_order_relaxed);
		if (c >= m) {
			if (!changed || c < first)
				first = c;
			if (!changed || c > last)
				last = c;
			changed++;
		}
	}
	if (changed)
		printf("report v1=%u v2=%u changed=%u first_us=%llu last_us=%llu first_at_us=%llu last_at_us=%llu stale=%u\n",
		       v1, v2, changed, (first - m) / 1000, (last - m) / 1000, first / 1000,
		       last / 1000, stale);
	else
		printf("report v1=%u v2=%u changed=0 first_us=-1 last_us=-1 first_at_us=-1 last_at_us=-1 stale=%u\n",
		       v1, v2, stale);
}

static void cmd_round(void)
{
	unsigned long long q = bench_now_ns(), *at = calloc(nr_workers, sizeof(*at));
	unsigned g = atomic_fetch_add(&round_gen, 1) + 1, n = 0, stale = 0;

	if (!at)
		bt_die("calloc", ENOMEM);
	for (unsigned i = 0; i < nr_workers; i++) {
		struct worker *w = &workers[i];

		while (atomic_load_explicit(&w->round_seen, memory_order_acquire) != g &&
		       bench_now_ns() - q < CV_REPORT_TIMEOUT_NS)
			bench_sleep_ns(100000);
		if (atomic_load_explicit(&w->round_seen, memory_order_acquire) != g) {
			stale++;
			continue;
		}
		at[n] = atomic_load_explicit(&w->round_at_ns, memory_order_relaxed);
		at[n] = at[n] > q ? at[n] - q : 0;
		n++;
	}
	qsort(at, n, sizeof(*at), bt_cmp_ull);
	printf("round p50_us=%llu max_us=%llu stale=%u\n", n ? at[(n - 1) / 2] / 1000 : 0,
	       n ? at[n - 1] / 1000 : 0, stale);
	free(at);
}

static void cmd_stats(void)
{
	unsigned long long now = bench_now_ns(), in = 0, total = 0;
	unsigned long calls = 0;

	for (unsigned i = 0; i < nr_workers; i++) {
		in += atomic_load_explicit(&workers[i].in_ns, memory_order_relaxed);
		total += now - workers[i].start_ns;
		calls += atomic_load_explicit(&workers[i].calls, memory_order_relaxed);
	}
	printf("stats in_pct=%.1f calls=%lu threads=%u\n",
	       total ? 100.0 * (double)in / (double)total : 0.0, calls, nr_workers);
}

int main(int argc, char **argv)
{
	double duty = 1.0;
	char line[256];

	bt_prog = "converge";
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];

		if (i + 1 >= argc) {
			fprintf(stderr, "converge: %s needs a value\n", opt);
			return 2;
		}
		if (strcmp(opt, "--threads") == 0) {
			nr_workers = (unsigned)bt_parse_num(opt, argv[++i]);
		} else if (strcmp(opt, "--in-us") == 0) {
			in_spin_ns = bt_parse_num(opt, argv[++i]) * 1000ull;
		} else if (strcmp(opt, "--out-us") == 0) {
			out_spin_ns = bt_parse_num(opt, argv[++i]) * 1000ull;
		} else if (strcmp(opt, "--duty") == 0) {
			char *end;

			duty = strtod(argv[++i], &end);
			if (*end || !(duty > 0.0 && duty <= 1.0)) {
				fprintf(stderr, "converge: --duty must be in (0, 1]\n");
				return 2;
			}
		} else {
			fprintf(stderr, "converge: unknown option %s\n", opt);
			return 2;
		}
	}
	if (!nr_workers) {
		fprintf(stderr, "converge: --threads must be at least 1\n");
		return 2;
	}
	/* Both phases sleep in proportion: the share inside stays in / (in + out). */
	in_sleep_ns = (unsigned long long)((double)in_spin_ns * (1.0 - duty) / duty);
	out_sleep_ns = (unsigned long long)((double)out_spin_ns * (1.0 - duty) / duty);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Sleeps end when asked, not up to 50 us later (inherited by threads). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	workers = aligned_alloc(64, sizeof(*workers) * nr_workers);
	if (!workers)
		bt_die("aligned_alloc", ENOMEM);
	memset(workers, 0, sizeof(*workers) * nr_workers);
	for (unsigned i = 0; i < nr_workers; i++)
		bt_start_thread(worker_main, &workers[i]);
	for (unsigned i = 0; i < nr_workers; i++)
		while (!atomic_load_explicit(&workers[i].calls, memory_order_relaxed))
			bench_sleep_ns(1000000);
	fprintf(stderr,
		"converge: %u workers, inside %llu us spin + %llu us sleep, outside %llu us spin + %llu us sleep\n",
		nr_workers, in_spin_ns / 1000, in_sleep_ns / 1000, out_spin_ns / 1000,
		out_sleep_ns / 1000);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "mark", 4) == 0) {
			unsigned long long m = bench_now_ns();

			atomic_store(&mark_ns, m);
			printf("mark at_us=%llu\n", m / 1000);
		} else if (strncmp(line, "report", 6) == 0) {
			cmd_report();
		} else if (strncmp(line, "round", 5) == 0) {
			cmd_round();
		} else if (strncmp(line, "stats", 5) == 0) {
			cmd_stats();
		} else if (strncmp(line, "check", 5) == 0) {
			unsigned long long body;

			printf("check version=%lu\n", cv_work(0, 0, &body));
		} else if (strncmp(line, "quit", 4) == 0) {
			return 0;
		} else {
			printf("error unknown command\n");
		}
	}
	return 0;
}
