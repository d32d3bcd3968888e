// SPDX-License-Identifier: MIT
/* simple_target.c - see simple_target.h. */
#include "simple_target.h"

#include <stdio.h>
#include <string.h>

int simple_target_main(const char *name, int (*fn)(int))
{
	char line[256];

	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int n;

		line[strcspn(line, "\r\n")] = '\0';
		if (sscanf(line, "call %d", &n) == 1)
			printf("%s(%d)=%d\n", name, n, fn(n));
		else if (!strcmp(line, "quit"))
			return 0;
		else
			printf("error: unknown command '%s'\n", line);
		fflush(stdout);
	}
	return 0;
}
