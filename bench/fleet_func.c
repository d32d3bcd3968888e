// SPDX-License-Identifier: MIT
/* The function bench/run_fleet.sh patches in every process. */
#include "fleet.h"

__attribute__((noinline)) int fleet_func(int x)
{
	volatile int y = x;

	return y * 2 + 1;
}
