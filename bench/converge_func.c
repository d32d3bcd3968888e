// SPDX-License-Identifier: MIT
/*
 * converge_func.c - cv_work(), where every worker of bench/converge spends
 * most of its time, and which bench/patch_converge.c replaces.  noipa:
 * each call is a real call, and the function is on the stack for the
 * whole call (the clock reads and the sleep are calls from it).
 */
#include "converge.h"

__attribute__((noipa)) unsigned long
cv_work(unsigned long long spin_ns, unsigned long long sleep_ns, unsigned long long *start_ns)
{
	return cv_body(spin_ns, sleep_ns, start_ns, CV_OLD_VERSION);
}
