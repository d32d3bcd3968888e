// SPDX-License-Identifier: MIT
/* patch_converge.so - "bench_converge": replaces cv_work() of ulp_bench_converge. */
#include <ulp/patch.h>

#include "converge.h"

__attribute__((noipa)) static unsigned long
new_cv_work(unsigned long long spin_ns, unsigned long long sleep_ns, unsigned long long *start_ns)
{
	return cv_body(spin_ns, sleep_ns, start_ns, CV_NEW_VERSION);
}

static struct ulp_func main_funcs[] = { { .old_name = "cv_work", .new_func = new_cv_work }, {} };

static struct ulp_object objs[] = { { .name = NULL, .funcs = main_funcs }, {} };

ULP_PATCH("bench_converge", .objs = objs);
