// SPDX-License-Identifier: MIT
/*
 * ulp_bench_stop_check - the baseline for bench/run_converge.sh: the
 * safety check of a tool without per-thread consistency, which may change
 * a function only at a moment when no thread at all has it on its stack.
 *
 *   ulp_bench_stop_check PID FUNCTION [TIMEOUT_S [INTERVAL_MS]]
 *                                      (default 10 s, 10 ms between attempts)
 *   -> stop_check threads=N converged=0|1 attempts=A elapsed_ms=E
 *      hold_p50_us=.. hold_max_us=.. blocked_min=.. blocked_p50=..
 *      unreliable=U unwinds=W frames=F unwind_ns_per_frame=..
 *
 * FUNCTION is a symbol of the executable (its address range comes from the
 * engine's symbol reader, libpatch/symbols.h).  The tracer seizes every
 * thread, then per attempt: PTRACE_INTERRUPT to all at once, waits until
 * every one has stopped, unwinds each (the engine's unwinder,
 * libpatch/unwind.h, one unwinder kept warm across attempts) and looks for
 * a frame inside FUNCTION.  None anywhere: converged, the moment such a
 * tool would write its code; the threads are detached still stopped.
 * Otherwise every thread is resumed and the attempt repeated INTERVAL_MS
 * later, until TIMEOUT_S have passed ("converged=0": did not converge).
 * An unwind that stops early counts as a blocker (the stack cannot be
 * proved free of the function) and as "unreliable".
 *
 * hold: from the first interrupt of an attempt to the last resume (the
 * longest any thread was stopped by it); blocked: threads with the function
 * on their stack per attempt.  An alarm ends the run TIMEOUT_S + 60 s after
 * its start whatever happens (the kernel then detaches the threads).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "error.h"
#include "ptrace_threads.h"
#include "symbols.h"
#include "unwind.h"

#define SC_MAX_FRAMES 512

static struct pt_threads ths;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct totals {
	uint64_t unwinds, frames, unwind_ns, unreliable;
};

/* Threads (all stopped) with a frame in [lo, hi), or whose stack cannot be read through. */
static int count_blocked(struct ulp_unwinder *u, uint64_t lo, uint64_t hi, uint64_t *ips,
			 struct totals *tot, size_t *blocked)
{
	*blocked = 0;
	for (size_t i = 0; i < ths.nr; i++) {
		pid_t tid = ths.t[i].tid;
		struct user_regs_struct regs;
		uint64_t t0;
		size_t n = 0;
		int ret;

		if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0)
			return -errno;
		t0 = bench_now_ns();
		ret = ulp_unwind_thread(u, tid, &regs, ips, SC_MAX_FRAMES, &n);
		tot->unwind_ns += bench_now_ns() - t0;
		tot->unwinds++;
		tot->frames += n;
		if (ret < 0) {
			tot->unreliable++;
			(*blocked)++;
			continue;
		}
		for (size_t f = 0; f < n; f++) {
			/* return addresses point after the call */
			uint64_t ip = f ? ips[f] - 1 : ips[f];

			if (ip >= lo && ip < hi) {
				(*blocked)++;
				break;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ulp_unwinder *u = NULL;
	struct ulp_symbols *syms = NULL;
	struct ulp_symbol sym;
	struct totals tot = { 0 };
	uint64_t *holds = NULL, *blocks = NULL, *ips;
	uint64_t start, deadline, timeout_s = 10, interval_ms = 10, blocked_min = UINT64_MAX;
	size_t attempts = 0, cap = 0;
	bool converged = false;
	pid_t pid;
	int ret;

	if (argc < 3 || argc > 5) {
		fprintf(stderr,
			"usage: ulp_bench_stop_check PID FUNCTION [TIMEOUT_S [INTERVAL_MS]]\n");
		return 2;
	}
	pid = atoi(argv[1]);
	if (argc > 3)
		timeout_s = strtoull(argv[3], NULL, 10);
	if (argc > 4)
		interval_ms = strtoull(argv[4], NULL, 10);
	if (pid <= 0 || !timeout_s) {
		fprintf(stderr, "ulp_bench_stop_check: bad arguments\n");
		return 2;
	}
	alarm((unsigned)timeout_s + 60);
	ips = malloc(SC_MAX_FRAMES * sizeof(*ips));
	if (!ips)
		return 2;
	if (ulp_symbols_open(pid, &syms) < 0 ||
	    ulp_symbols_resolve(syms, "main", argv[2], 0, &sym) < 0) {
		fprintf(stderr, "ulp_bench_stop_check: %s\n", ulp_last_error());
		return 1;
	}
	ulp_symbols_close(syms);
	if (!sym.size) {
		fprintf(stderr, "ulp_bench_stop_check: %s has no size\n", argv[2]);
		return 1;
	}
	ret = pt_seize_all(&ths, pid);
	if (ret == 0)
		ret = ulp_unwinder_create(pid, &u);
	start = bench_now_ns();
	deadline = start + timeout_s * 1000000000ull;
	while (ret == 0 && bench_now_ns() < deadline) {
		uint64_t t0 = bench_now_ns();
		size_t blocked = 0;

		if (attempts == cap) {
			uint64_t *h, *b;

			cap = cap ? 2 * cap : 256;
			h = realloc(holds, cap * sizeof(*holds));
			b = h ? realloc(blocks, cap * sizeof(*blocks)) : NULL;
			if (h)
				holds = h;
			if (!b) {
				ret = -ENOMEM;
				break;
			}
			blocks = b;
		}
		ret = pt_stop_all(&ths);
		if (ret == 0)
			ret = count_blocked(u, sym.addr, sym.addr + sym.size, ips, &tot, &blocked);
		if (ret < 0)
			break;
		blocks[attempts] = blocked;
		if (blocked < blocked_min)
			blocked_min = blocked;
		if (blocked == 0) {
			/* Safe: here the tool would write its code.  Leave them as they are. */
			holds[attempts++] = bench_now_ns() - t0;
			converged = true;
			break;
		}
		ret = pt_resume_all(&ths);
		holds[attempts++] = bench_now_ns() - t0;
		if (interval_ms) {
			struct timespec ts = { .tv_sec = (time_t)(interval_ms / 1000),
					       .tv_nsec = (long)(interval_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (ret < 0) {
		fprintf(stderr, "ulp_bench_stop_check: %s\n", strerror(-ret));
		return 1;
	}
	/* PTRACE_DETACH needs a stopped tracee. */
	if (converged || pt_stop_all(&ths) == 0)
		pt_detach_all(&ths);
	ulp_unwinder_destroy(u);
	if (!attempts) {
		fprintf(stderr, "ulp_bench_stop_check: no attempt made\n");
		return 1;
	}
	{
		uint64_t elapsed = bench_now_ns() - start;

		qsort(holds, attempts, sizeof(*holds), cmp_u64);
		qsort(blocks, attempts, sizeof(*blocks), cmp_u64);
		printf("stop_check threads=%zu converged=%d attempts=%zu elapsed_ms=%llu hold_p50_us=%llu hold_max_us=%llu blocked_min=%llu blocked_p50=%llu unreliable=%llu unwinds=%llu frames=%llu unwind_ns_per_frame=%llu\n",
		       ths.nr, converged, attempts, (unsigned long long)(elapsed / 1000000),
		       (unsigned long long)(holds[(attempts - 1) / 2] / 1000),
		       (unsigned long long)(holds[attempts - 1] / 1000),
		       (unsigned long long)blocked_min,
		       (unsigned long long)blocks[(attempts - 1) / 2],
		       (unsigned long long)tot.unreliable, (unsigned long long)tot.unwinds,
		       (unsigned long long)tot.frames,
		       (unsigned long long)(tot.frames ? tot.unwind_ns / tot.frames : 0));
	}
	free(holds);
	free(blocks);
	free(ips);
	return 0;
}
