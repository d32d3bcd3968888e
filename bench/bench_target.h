/* SPDX-License-Identifier: MIT */
/*
 * bench_target.h - what the target programs of the benchmark scripts
 * (ulp_bench_apply_stop, ulp_bench_converge) share: worker threads started
 * alike, numeric options read alike, errors reported alike, so that the
 * two targets differ only in what their workers do and what they measure.
 */
#ifndef ULP_BENCH_TARGET_H
#define ULP_BENCH_TARGET_H

#include <stdatomic.h>
#include <stdbool.h>

/* The prefix of every message ("converge"); main sets it first. */
extern const char *bt_prog;

/* "PROG: WHAT: strerror(err)" on stderr, exit 2. */
_Noreturn void bt_die(const char *what, int err);
/* The unsigned decimal value s of option opt; exits 2 if it is not one. */
unsigned long long bt_parse_num(const char *opt, const char *s);
/* Starts fn(arg) on a detached thread with a small stack. */
void bt_start_thread(void *(*fn)(void *), void *arg);
/* Whether a worker's clock reading *at reaches since (a request's time),
 * waiting for it 100 us at a time until timeout_ns after since: a command
 * answers for the workers that have run since it came, the others are
 * "stale". */
bool bt_wait_since(atomic_ullong *at, unsigned long long since, unsigned long long timeout_ns);
/* qsort() comparator for unsigned long long. */
int bt_cmp_ull(const void *a, const void *b);

#endif
