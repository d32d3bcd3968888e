// SPDX-License-Identifier: MIT
/*
 * patch_fill.so - "fill_fix": replaces fill() (tests/targets/fill.c, whose
 * rep stosb sits inside the 5 bytes ulp overwrites) by a C version that
 * zeroes the buffer the same way but returns 1 instead of 0, so the target
 * can count the calls the new version answered.
 */
#include <string.h>
#include <ulp/patch.h>

static long new_fill(void *buf, long unused1, long unused2, unsigned long len)
{
	(void)unused1;
	(void)unused2;
	memset(buf, 0, len);
	return 1;
}

static struct ulp_func funcs[] = { { .old_name = "fill", .new_func = new_fill }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("fill_fix", .objs = objs);
