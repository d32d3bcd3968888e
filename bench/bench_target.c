// SPDX-License-Identifier: MIT
/* bench_target.c - see bench_target.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "bench_target.h"

/* Workers need little stack; 512 of them (run_apply_stop.sh -t 512) at
 * the default 8 MiB would reserve 4 GiB. */
#define BT_STACK_SIZE (256 * 1024)

const char *bt_prog = "bench";

void bt_die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", bt_prog, what, strerror(err));
	exit(2);
}

unsigned long long bt_parse_num(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "%s: bad value for %s: %s\n", bt_prog, opt, s);
		exit(2);
	}
	return v;
}

void bt_start_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, BT_STACK_SIZE);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (err)
		bt_die("pthread_create", err);
}

bool bt_wait_since(atomic_ullong *at, unsigned long long since, unsigned long long timeout_ns)
{
	while (atomic_load_explicit(at, memory_order_acquire) < since &&
	       bench_now_ns() - since < timeout_ns)
		bench_sleep_ns(100000);
	return atomic_load_explicit(at, memory_order_acquire) >= since;
}

int bt_cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}
