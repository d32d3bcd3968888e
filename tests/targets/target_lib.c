// SPDX-License-Identifier: MIT
/*
 * target_lib.c - a target whose code under test lives in libulpdemo.so.1.
 *
 *   call N    lib_compute(N)=R
 *   quit      exits 0
 *
 * Prints "ready" once it reads commands (see simple_target.h).
 */
#include "simple_target.h"

int lib_compute(int x);

int main(void)
{
	return simple_target_main("lib_compute", lib_compute);
}
