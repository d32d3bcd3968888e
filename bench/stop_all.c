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
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct th {
	pid_t tid;
	int stopped;
	int sig; /* a signal the target must still receive */
};

static struct th *ths;
static size_t nr;

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

static struct th *find(pid_t tid)
{
	for (size_t i = 0; i < nr; i++)
		if (ths[i].tid == tid)
			return &ths[i];
	return NULL;
}

static int seize_all(pid_t pid)
{
	char path[64];
	int added;

	do {
		struct dirent *de;
		DIR *d;

		added = 0;
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		if (!d)
			return -errno;
		while ((de = readdir(d))) {
			pid_t tid = atoi(de->d_name);
			struct th *n;

			if (tid <= 0 || find(tid))
				continue;
			if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
				if (errno == ESRCH)
					continue;
				closedir(d);
				return -errno;
			}
			n = realloc(ths, (nr + 1) * sizeof(*ths));
			if (!n) {
				closedir(d);
				return -ENOMEM;
			}
			ths = n;
			ths[nr++] = (struct th){ .tid = tid };
			added++;
		}
		closedir(d);
	} while (added);
	return 0;
}

/* Interrupt all, wait until all are stopped.  Returns 0 or -errno. */
static int stop_all(void)
{
	size_t left = 0;

	for (size_t i = 0; i < nr; i++) {
		if (ths[i].stopped)
			continue;
		if (ptrace(PTRACE_INTERRUPT, ths[i].tid, 0, 0) < 0)
			return -errno;
		left++;
	}
	while (left) {
		int status;
		pid_t tid = waitpid(-1, &status, __WALL);
		struct th *t;

		if (tid < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		t = find(tid);
		if (!t || !WIFSTOPPED(status))
			return -ESRCH; /* a thread came or went: the target must be stable */
		if (status >> 16 == PTRACE_EVENT_STOP) {
			if (!t->stopped) {
				t->stopped = 1;
				left--;
			}
		} else {
			/* A signal for the target: keep it, stay stopped. */
			t->sig = WSTOPSIG(status);
			if (!t->stopped) {
				t->stopped = 1;
				left--;
			}
		}
	}
	return 0;
}

static int resume_all(void)
{
	for (size_t i = 0; i < nr; i++) {
		struct user_regs_struct regs;

		if (ptrace(PTRACE_GETREGS, ths[i].tid, 0, &regs) < 0)
			return -errno;
	}
	for (size_t i = 0; i < nr; i++) {
		if (ptrace(PTRACE_CONT, ths[i].tid, 0, (void *)(long)ths[i].sig) < 0)
			return -errno;
		ths[i].stopped = 0;
		ths[i].sig = 0;
	}
	return 0;
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
	ret = seize_all(pid);
	for (int r = 0; r < reps && ret == 0; r++) {
		unsigned long long t0 = now_us();

		ret = stop_all();
		stopped[r] = now_us() - t0;
		if (ret == 0)
			ret = resume_all();
		held[r] = now_us() - t0;
		nanosleep(&pause, NULL);
	}
	/* PTRACE_DETACH needs a stopped tracee. */
	if (stop_all() == 0)
		for (size_t i = 0; i < nr; i++)
			ptrace(PTRACE_DETACH, ths[i].tid, 0, (void *)(long)ths[i].sig);
	if (ret < 0) {
		fprintf(stderr, "ulp_bench_stop_all: %s\n", strerror(-ret));
		return 1;
	}
	qsort(stopped, (size_t)reps, sizeof(*stopped), cmp_ull);
	qsort(held, (size_t)reps, sizeof(*held), cmp_ull);
	printf("stop_all threads=%zu reps=%d stopped_p50_us=%llu stopped_max_us=%llu held_p50_us=%llu held_max_us=%llu\n",
	       nr, reps, stopped[(reps - 1) / 2], stopped[reps - 1], held[(reps - 1) / 2],
	       held[reps - 1]);
	return 0;
}
