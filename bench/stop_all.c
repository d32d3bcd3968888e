// SPDX-License-Identifier: MIT
/*
 * ulp_bench_stop_all - the floor under ulpd's stop-all: how long it takes
 * the kernel to stop every thread of a process with ptrace and let them go
 * again, with nothing else done in between.
 *
 *   ulp_bench_stop_all PID [REPS]     (default 20 repetitions)
 *   -> stop_all threads=N reps=R stopped_p50_us=.. stopped_max_us=..
 *      held_p50_us=.. held_max_us=..
 *
 * Seizes every thread (PTRACE_SEIZE: no stop), then per repetition:
 * PTRACE_INTERRUPT to all, a blocking waitpid() until every one reports its
 * stop ("stopped": from the first interrupt to the last stop), then
 * PTRACE_GETREGS and PTRACE_CONT for each ("held": from the first
 * interrupt to the last resume, the longest any thread can have been
 * stopped).  Repetitions are 10 ms apart.  Detaches at the end; an alarm
 * ends it after 120 s (the kernel then detaches by itself).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "ptrace_threads.h"

static struct pt_threads ths;

static unsigned long long now_us(void)
{
	return bench_now_ns() / 1000;
}

/* "held" includes reading every thread's registers before resuming them. */
static int resume_all(void)
{
	for (size_t i = 0; i < ths.nr; i++) {
		struct user_regs_struct regs;

		if (ptrace(PTRACE_GETREGS, ths.t[i].tid, 0, &regs) < 0)
			return -errno;
	}
	return pt_resume_all(&ths);
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };
	unsigned long long *stopped, *held;
	pid_t pid;
	int reps, ret = 0;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: ulp_bench_stop_all PID [REPS]\n");
		return 2;
	}
	pid = atoi(argv[1]);
	reps = argc > 2 ? atoi(argv[2]) : 20;
	if (pid <= 0 || reps <= 0) {
		fprintf(stderr, "ulp_bench_stop_all: bad arguments\n");
		return 2;
	}
	stopped = calloc((size_t)reps, sizeof(*stopped));
	held = calloc((size_t)reps, sizeof(*held));
	if (!stopped || !held)
		return 2;
	alarm(120);
	ret = pt_seize_all(&ths, pid);
	for (int r = 0; r < reps && ret == 0; r++) {
		unsigned long long t0 = now_us();

		ret = pt_stop_all(&ths);
		stopped[r] = now_us() - t0;
		if (ret == 0)
			ret = resume_all();
		held[r] = now_us() - t0;
		nanosleep(&pause, NULL);
	}
	/* PTRACE_DETACH needs a stopped tracee. */
	if (pt_stop_all(&ths) == 0)
		pt_detach_all(&ths);
	if (ret < 0) {
		fprintf(stderr, "ulp_bench_stop_all: %s\n", strerror(-ret));
		return 1;
	}
	qsort(stopped, (size_t)reps, sizeof(*stopped), cmp_ull);
	qsort(held, (size_t)reps, sizeof(*held), cmp_ull);
	printf("stop_all threads=%zu reps=%d stopped_p50_us=%llu stopped_max_us=%llu held_p50_us=%llu held_max_us=%llu\n",
	       ths.nr, reps, stopped[(reps - 1) / 2], stopped[reps - 1], held[(reps - 1) / 2],
	       held[reps - 1]);
	return 0;
}
