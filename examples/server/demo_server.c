// SPDX-License-Identifier: MIT
/*
 * demo_server.c - the program the demo patches while it runs.
 *
 * A price service with a bug: compute_price() forgets the discount for
 * quantities of 10 or more.  Every half second it prints the price it
 * quotes, so the effect of a live patch shows on its output at once:
 *
 *   [12] price(10) = 100
 *
 * Prints its PID first; stops after --count N lines (default: never).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNIT_PRICE 10

/*
 * The function the patch replaces.  noipa: the compiler may assume nothing
 * about it (it would otherwise see a pure function and hoist the call out
 * of the loop in main), as it must for any function meant to be live
 * patched.
 */
__attribute__((noipa)) int compute_price(int quantity)
{
	int price = quantity * UNIT_PRICE;

	if (quantity < 0)
		return -1;
	/* BUG: the 10% discount for 10 items or more is missing. */
	return price;
}

int main(int argc, char **argv)
{
	struct timespec half = { .tv_sec = 0, .tv_nsec = 500 * 1000 * 1000 };
	long count = -1;

	if (argc == 3 && !strcmp(argv[1], "--count"))
		count = atol(argv[2]);
	printf("demo_server: pid %d\n", (int)getpid());
	fflush(stdout);
	for (long i = 1; count < 0 || i <= count; i++) {
		printf("[%ld] price(10) = %d\n", i, compute_price(10));
		fflush(stdout);
		nanosleep(&half, NULL);
	}
	return 0;
}
