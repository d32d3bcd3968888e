// SPDX-License-Identifier: MIT
/*
 * ulp_bench_fleet: one of the many identical processes bench/run_fleet.sh
 * patches at once with `ulpctl apply --exe`.  It calls fleet_func() once
 * (so the function is live code), prints "ready", then sleeps until it is
 * killed, holding little memory.
 */
#include <stdio.h>
#include <unistd.h>

#include "fleet.h"

int main(void)
{
	printf("ready %d\n", fleet_func(1));
	fflush(stdout);
	for (;;)
		pause();
}
