// SPDX-License-Identifier: MIT
/*
 * call_cost_func.c - the two functions bench/call_cost calls, in their own
 * file and marked noipa so that every call in the measuring loops is a real
 * call: GCC neither inlines them nor learns from their bodies (a pure
 * function's call could otherwise be hoisted out of the loop).
 */
#include "call_cost.h"

__attribute__((noipa)) unsigned long cc_old(unsigned long x)
{
	return CC_OLD_BODY(x);
}

__attribute__((noipa)) unsigned long cc_new_equiv(unsigned long x)
{
	return CC_NEW_BODY(x);
}
