// SPDX-License-Identifier: MIT
/*
 * apply_stop_func.c - as_work(), the function every worker thread of
 * bench/apply_stop calls in its loop and bench/patch_apply_stop.c replaces.
 * noipa: each call is a real call; the body is long enough for the entry
 * jump.
 */
#include "apply_stop.h"

__attribute__((noipa)) unsigned long as_work(unsigned long x)
{
	return AS_OLD_BODY(x);
}
