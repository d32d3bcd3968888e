// SPDX-License-Identifier: MIT
/* patch_apply_stop.so - "bench_apply_stop": replaces as_work() of ulp_bench_apply_stop. */
#include <ulp/patch.h>

#include "apply_stop.h"

__attribute__((noipa)) static unsigned long new_as_work(unsigned long x)
{
	return AS_NEW_BODY(x);
}

static struct ulp_func main_funcs[] = { { .old_name = "as_work", .new_func = new_as_work }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = main_funcs }, {} };

ULP_PATCH("bench_apply_stop", .objs = objs);
