// SPDX-License-Identifier: MIT
/*
 * target_static.c - a statically linked target (no dynamic loader, so ulp
 * cannot load its runtime and must refuse it cleanly).
 *
 *   call N    compute(N)=R
 *   quit      exits 0
 */
#include <stdio.h>
#include <string.h>

__attribute__((noipa, used)) int compute(int x)
{
	return x + 1;
}

int main(void)
{
	char line[256];

	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int n;

		line[strcspn(line, "\r\n")] = '\0';
		if (sscanf(line, "call %d", &n) == 1)
			printf("compute(%d)=%d\n", n, compute(n));
		else if (!strcmp(line, "quit"))
			return 0;
		else
			printf("error: unknown command '%s'\n", line);
		fflush(stdout);
	}
	return 0;
}
