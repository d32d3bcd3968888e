// SPDX-License-Identifier: MIT
/*
 * dlhammer.c - libdlhammer.so, dlopen()ed and dlclose()d in a loop by
 * target --hammer-dlopen so the loader is busy while ulp injects.
 */
static int constructed;

__attribute__((constructor)) static void dlhammer_init(void)
{
	constructed = 1;
}

int dlhammer_value(int x);

__attribute__((visibility("default"))) int dlhammer_value(int x)
{
	return constructed ? 41 + x : -1;
}
