// SPDX-License-Identifier: MIT
/*
 * target_static.c - a statically linked target (no dynamic loader, so ulp
 * cannot load its runtime and must refuse it cleanly).
 *
 *   call N    compute(N)=R
 *   quit      exits 0
 *
 * Prints "ready" once it reads commands (see simple_target.h).
 */
#include "simple_target.h"

__attribute__((noipa, used)) int compute(int x)
{
	return x + 1;
}

int main(void)
{
	return simple_target_main("compute", compute);
}
