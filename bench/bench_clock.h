/* SPDX-License-Identifier: MIT */
/*
 * bench_clock.h - the clock every benchmark program reads: CLOCK_MONOTONIC,
 * the clock of ulpd's ULP_TRACE lines, so that the programs' times and the
 * trace's can be subtracted.  Inline: converge.h uses them in the body of
 * the function that is patched, whose copies in the target and in the
 * patch must be the same code.
 */
#ifndef ULP_BENCH_CLOCK_H
#define ULP_BENCH_CLOCK_H

#include <time.h>

static inline unsigned long long bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* A ptrace stop interrupts the sleep: it is then shorter, never longer. */
static inline void bench_sleep_ns(unsigned long long ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

#endif
