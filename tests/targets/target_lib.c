// SPDX-License-Identifier: MIT
/*
 * target_lib.c - a target whose code under test lives in libulpdemo.so.1.
 *
 *   call N    lib_compute(N)=R
 *   quit      exits 0
 *
 * Prints "ready" once it reads commands.
 */
#include <stdio.h>
#include <string.h>

int lib_compute(int x);

int main(void)
{
	char line[256];

	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int n;

		line[strcspn(line, "\r\n")] = '\0';
		if (sscanf(line, "call %d", &n) == 1)
			printf("lib_compute(%d)=%d\n", n, lib_compute(n));
		else if (!strcmp(line, "quit"))
			return 0;
		else
			printf("error: unknown command '%s'\n", line);
		fflush(stdout);
	}
	return 0;
}
