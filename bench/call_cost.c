// SPDX-License-Identifier: MIT
/*
 * call_cost.c - the target of bench/run_call_cost.sh: how many ns a call of
 * a patched function costs, against a direct call of the same code.
 *
 * Reads one command per line on stdin, answers with one line on stdout:
 *
 *   check                  check old=R new=R   (cc_old(5), cc_new_equiv(5))
 *   measure ITERS REPS     measure new=.. old=.. new_chain=.. old_chain=..
 *                          (ns per call, median of REPS runs of ITERS calls)
 *   quit                   exits 0
 *
 * Two loop shapes are timed for each function:
 *   - independent calls (sum += f(i)): calls can overlap, so what the
 *     redirection adds to the instruction stream (two extra taken jumps, one
 *     of them indirect) shows up as throughput;
 *   - a dependency chain (x = f(x)): each call waits for the previous result,
 *     the usual latency-bound shape.
 * Every variant runs once per repetition, interleaved, so frequency drift
 * hits them alike.  Time is the thread's CPU time.  The figures include the
 * loop's own overhead (about one cycle per iteration), which cancels out in
 * the difference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call_cost.h"

#define MAX_REPS 101

enum { V_NEW, V_OLD, V_NEW_CHAIN, V_OLD_CHAIN, NR_V };
static const char *const v_names[NR_V] = { "new", "old", "new_chain", "old_chain" };

static volatile unsigned long sink;

/*
 * The thread's CPU time, not wall time: time the thread spends preempted
 * (other processes on a loaded machine) is not counted.
 */
static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/*
 * The loops are macros rather than one function taking a function pointer:
 * each must contain a direct "call cc_old" / "call cc_new_equiv", as
 * ordinary code calling the patched function would.  The empty asm hides the
 * argument's value from the compiler so that nothing is precomputed.
 */
#define INDEPENDENT_LOOP(fn, iters)                                                                \
	({                                                                                         \
		unsigned long _sum = 0;                                                            \
		for (unsigned long _i = 0; _i < (iters); _i++) {                                   \
			unsigned long _v = _i;                                                     \
			__asm__ volatile("" : "+r"(_v));                                           \
			_sum += fn(_v);                                                            \
		}                                                                                  \
		_sum;                                                                              \
	})

#define CHAIN_LOOP(fn, iters)                                                                      \
	({                                                                                         \
		unsigned long _x = 1;                                                              \
		for (unsigned long _i = 0; _i < (iters); _i++) {                                   \
			_x = fn(_x);                                                               \
			__asm__ volatile("" : "+r"(_x));                                           \
		}                                                                                  \
		_x;                                                                                \
	})

static double time_variant(int v, unsigned long iters)
{
	unsigned long long t0 = now_ns(), t1;
	unsigned long r = 0;

	switch (v) {
	case V_NEW:
		r = INDEPENDENT_LOOP(cc_new_equiv, iters);
		break;
	case V_OLD:
		r = INDEPENDENT_LOOP(cc_old, iters);
		break;
	case V_NEW_CHAIN:
		r = CHAIN_LOOP(cc_new_equiv, iters);
		break;
	case V_OLD_CHAIN:
		r = CHAIN_LOOP(cc_old, iters);
		break;
	}
	t1 = now_ns();
	sink = r;
	return (double)(t1 - t0) / (double)iters;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void measure(unsigned long iters, int reps)
{
	static double t[NR_V][MAX_REPS];

	if (reps < 1)
		reps = 1;
	if (reps > MAX_REPS)
		reps = MAX_REPS;
	/* One short warm-up pass: page in, train the predictors, ramp the clock. */
	for (int v = 0; v < NR_V; v++)
		time_variant(v, iters / 10 + 1);
	for (int r = 0; r < reps; r++)
		for (int v = 0; v < NR_V; v++)
			t[v][r] = time_variant(v, iters);
	printf("measure");
	for (int v = 0; v < NR_V; v++) {
		double min = t[v][0];

		for (int r = 1; r < reps; r++)
			if (t[v][r] < min)
				min = t[v][r];
		printf(" %s=%.4f %s_min=%.4f", v_names[v], median(t[v], reps), v_names[v], min);
	}
	printf("\n");
}

int main(void)
{
	char line[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long iters;
		int reps;

		if (strncmp(line, "check", 5) == 0) {
			printf("check old=%lu new=%lu\n", cc_old(5), cc_new_equiv(5));
		} else if (sscanf(line, "measure %lu %d", &iters, &reps) == 2 && iters > 0) {
			measure(iters, reps);
		} else if (strncmp(line, "quit", 4) == 0) {
			return 0;
		} else {
			printf("error unknown command\n");
		}
	}
	return 0;
}
