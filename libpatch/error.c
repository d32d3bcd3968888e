/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread char ulp_error_buf[1024];

int ulp_errorf(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ulp_error_buf, sizeof(ulp_error_buf), fmt, ap);
	va_end(ap);
	return err;
}

int ulp_error_prefix(int err, const char *fmt, ...)
{
	char prefix[512], old[sizeof(ulp_error_buf)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, ulp_error_buf, sizeof(old));
	/* Truncating a long message is fine; the start carries the context. */
	if (snprintf(ulp_error_buf, sizeof(ulp_error_buf), "%s: %s", prefix,
		     old[0] ? old : strerror(-err)) < 0)
		ulp_error_buf[0] = '\0';
	return err;
}

const char *ulp_last_error(void)
{
	return ulp_error_buf;
}

void ulp_error_clear(void)
{
	ulp_error_buf[0] = '\0';
}

void ulp_error_stash(struct ulp_error_stash *s)
{
	_Static_assert(sizeof(s->msg) == sizeof(ulp_error_buf), "a whole message");
	memcpy(s->msg, ulp_error_buf, sizeof(s->msg));
	ulp_error_buf[0] = '\0';
}

void ulp_error_unstash(const struct ulp_error_stash *s)
{
	memcpy(ulp_error_buf, s->msg, sizeof(ulp_error_buf));
}

void ulp_trace(const char *fmt, ...)
{
	static int on = -1;
	struct timespec ts, cpu;
	va_list ap;

	if (on < 0) {
		const char *e = getenv("ULP_TRACE");

		on = e && *e && strcmp(e, "0") != 0;
	}
	if (!on)
		return;
	/* The thread's CPU time beside the clock tells waiting from working. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
	fprintf(stderr, "ulp-trace %ld.%06ld cpu %ld.%06ld ", (long)ts.tv_sec, ts.tv_nsec / 1000,
		(long)cpu.tv_sec, cpu.tv_nsec / 1000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
