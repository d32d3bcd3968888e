// SPDX-License-Identifier: MIT
/*
 * patch_call_cost.so - "bench_call_cost": replaces cc_old() of
 * ulp_bench_call_cost with the body of cc_new_equiv(), so that a call of the
 * patched cc_old() and a direct call of cc_new_equiv() run the same code
 * and differ only by the redirection.
 */
#include <ulp/patch.h>

#include "call_cost.h"

__attribute__((noipa)) static unsigned long new_cc_old(unsigned long x)
{
	return CC_NEW_BODY(x);
}

static struct ulp_func main_funcs[] = { { .old_name = "cc_old", .new_func = new_cc_old }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = main_funcs }, {} };

ULP_PATCH("bench_call_cost", .objs = objs);
