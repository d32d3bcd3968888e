// SPDX-License-Identifier: MIT
/*
 * call_cost.c - the target of bench/run_call_cost.sh: how many ns a call of
 * a patched function costs, against a direct call of the same code.
 *
 * Reads one command per line on stdin, answers with one line on stdout:
 *
 *   check                  check old=R new=R   (cc_old(5), cc_new_equiv(5))
 *   resolve                resolve slot=ADDR new=ADDR, or
 *                          resolve entry=direct new=ADDR
 *                          (decodes the patched entry of cc_old: its
 *                          "jmp rel32" either straight to the new function
 *                          or to a slot whose "jmp *ptr(%rip)" leads there;
 *                          points cc_dyn_ptr1 at the new function and
 *                          cc_dyn_ptr2 at the slot (at the new function when
 *                          there is none), to time those legs apart)
 *   measure ITERS REPS     measure new=.. new_min=.. old=.. ... old_chain=..
 *                          (ns per call, median and minimum of REPS runs of
 *                          ITERS calls, for each function below)
 *   where                  where new=ADDR near=ADDR far=ADDR
 *                          (cc_new_equiv and its two copies)
 *   quit                   exits 0
 *
 * Functions timed: cc_new_equiv (a direct call of the replacement's code),
 * cc_old (the function ulp patches), and cc_new_equiv reached through
 * stand-ins for the parts of the redirection (cc_jmp_*, call_cost_func.c).
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "call_cost.h"

#define MAX_REPS 101

/* Each function timed, independent calls first, then chained. */
#define FUNCS(X)                                                                                   \
	X(new, cc_new_equiv)                                                                       \
	X(old, cc_old)                                                                             \
	X(jmp_direct, cc_jmp_direct)                                                               \
	X(jmp_indirect, cc_jmp_indirect)                                                           \
	X(jmp_both, cc_jmp_both)                                                                   \
	X(dyn1, cc_jmp_dyn1)                                                                       \
	X(dyn2, cc_jmp_dyn2)                                                                       \
	X(copy_near, cc_jmp_dyn3)                                                                  \
	X(copy_far, cc_jmp_dyn4)

#define ENUM_IND(name, fn) V_##name,
#define ENUM_CHAIN(name, fn) V_##name##_chain,
#define NAME_IND(name, fn) #name,
#define NAME_CHAIN(name, fn) #name "_chain",
enum { FUNCS(ENUM_IND) FUNCS(ENUM_CHAIN) NR_V };
static const char *const v_names[NR_V] = { FUNCS(NAME_IND) FUNCS(NAME_CHAIN) };

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

#define CASE_IND(name, fn)                                                                         \
	case V_##name:                                                                             \
		r = INDEPENDENT_LOOP(fn, iters);                                                   \
		break;
#define CASE_CHAIN(name, fn)                                                                       \
	case V_##name##_chain:                                                                     \
		r = CHAIN_LOOP(fn, iters);                                                         \
		break;
	switch (v) {
		FUNCS(CASE_IND)
		FUNCS(CASE_CHAIN)
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

/*
 * A copy of cc_new_equiv's code (position-independent: lea, ret) at offset
 * 0x100 of a fresh page: near != 0 puts the page within 1 GiB of the
 * executable's code, else wherever mmap() likes (next to the shared
 * libraries, like a dlopen()ed patch).  Returns NULL if that fails.
 */
static void *copy_new_code(int near)
{
	uintptr_t base = (uintptr_t)cc_new_equiv & ~(uintptr_t)0xfff;
	unsigned char *page = MAP_FAILED;

	for (uintptr_t off = 256ul << 20; near && page == MAP_FAILED && off < 1ul << 30;
	     off += 64ul << 20)
		page = mmap((void *)(base + off), 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (!near)
		page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return NULL;
	memcpy(page + 0x100, (const void *)cc_new_equiv, 16);
	if (mprotect(page, 4096, PROT_READ | PROT_EXEC)) {
		munmap(page, 4096);
		return NULL;
	}
	return page + 0x100;
}

/* Follow cc_old's entry jump and the slot's indirect jump. */
static void resolve(void)
{
	const unsigned char *p = (const unsigned char *)cc_old, *slot;
	int32_t rel;

	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		p += 4; /* endbr64 */
	if (p[0] != 0xe9) {
		printf("error cc_old does not start with a jmp rel32\n");
		return;
	}
	memcpy(&rel, p + 1, 4);
	slot = p + 5 + rel;
	if (slot[0] != 0xff || slot[1] != 0x25) {
		/* The patch is in reach: the entry jumps straight to the new code. */
		cc_dyn_ptr1 = (void *)slot;
		cc_dyn_ptr2 = (void *)slot;
		printf("resolve entry=direct new=%p\n", cc_dyn_ptr1);
		return;
	}
	memcpy(&rel, slot + 2, 4);
	memcpy(&cc_dyn_ptr1, slot + 6 + rel, sizeof(void *));
	cc_dyn_ptr2 = (void *)slot;
	printf("resolve slot=%p new=%p\n", (void *)slot, cc_dyn_ptr1);
}

int main(void)
{
	char line[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	cc_dyn_ptr3 = copy_new_code(1);
	cc_dyn_ptr4 = copy_new_code(0);
	if (!cc_dyn_ptr3 || !cc_dyn_ptr4) {
		fprintf(stderr, "call_cost: cannot map copies of cc_new_equiv\n");
		return 1;
	}
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long iters;
		int reps;

		if (strncmp(line, "check", 5) == 0) {
			printf("check old=%lu new=%lu\n", cc_old(5), cc_new_equiv(5));
		} else if (strncmp(line, "where", 5) == 0) {
			printf("where new=%p near=%p far=%p\n", (void *)cc_new_equiv, cc_dyn_ptr3,
			       cc_dyn_ptr4);
		} else if (strncmp(line, "resolve", 7) == 0) {
			resolve();
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
