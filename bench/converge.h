/* SPDX-License-Identifier: MIT */
/*
 * converge.h - the function bench/converge patches (cv_work) and the body
 * both its versions share: note when the body started running (*start_ns,
 * CLOCK_MONOTONIC), spin reading the clock for spin_ns, then sleep
 * sleep_ns, all inside the function, and say which version ran.  Inline,
 * so the target's copy and the patch's copy are the same code.
 */
#ifndef ULP_BENCH_CONVERGE_H
#define ULP_BENCH_CONVERGE_H

#include "bench_clock.h"

#define CV_OLD_VERSION 1ul
#define CV_NEW_VERSION 2ul

static inline unsigned long cv_body(unsigned long long spin_ns, unsigned long long sleep_ns,
				    unsigned long long *start_ns, unsigned long version)
{
	unsigned long long t0 = bench_now_ns();

	*start_ns = t0;
	while (bench_now_ns() - t0 < spin_ns)
		__asm__ volatile("pause" ::: "memory");
	if (sleep_ns)
		bench_sleep_ns(sleep_ns);
	return version;
}

unsigned long cv_work(unsigned long long spin_ns, unsigned long long sleep_ns,
		      unsigned long long *start_ns);

#endif
