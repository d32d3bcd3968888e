// SPDX-License-Identifier: MIT
/*
 * patch_gate.so - "gate_fix": new versions of value_fn(), gate() and
 * gate_callee() (tests/targets/gate.c) with results that tell old from new:
 * value_fn(x) = x + 1000 instead of x + 1, and both gates add 500000 to
 * value_fn(x).  The new gates block on the same fd as the old ones.  Only
 * threads already switched to the patched state run them, so they call
 * the new value_fn directly.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <ulp/patch.h>

static int read_byte(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		exit(3);
	return c;
}

static __attribute__((noipa)) int new_value_fn(int x)
{
	return x + 1000;
}

static int new_gate(int fd, int x)
{
	read_byte(fd);
	return new_value_fn(x) + 500000;
}

static int new_gate_callee(int fd, int x)
{
	read_byte(fd);
	return new_value_fn(x) + 500000;
}

static struct ulp_func funcs[] = { { .old_name = "value_fn", .new_func = new_value_fn },
				   { .old_name = "gate", .new_func = new_gate },
				   { .old_name = "gate_callee", .new_func = new_gate_callee },
				   {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = funcs }, {} };

ULP_PATCH("gate_fix", .objs = objs);
