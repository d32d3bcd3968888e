// SPDX-License-Identifier: MIT
/*
 * helper1.c - the first of two static functions named helper().  Linked
 * before helper2.c, so this one is helper at sympos 1 in the symbol table.
 * Compiled at -O0, like compute.c.
 */
__attribute__((noipa)) static int helper(int x)
{
	return x * 10;
}

int call_helper1(int x);

int call_helper1(int x)
{
	return helper(x);
}
