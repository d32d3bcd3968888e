// SPDX-License-Identifier: MIT
/*
 * helper2.c - the second static function named helper() (sympos 2).
 */
__attribute__((noipa)) static int helper(int x)
{
	return x * 100;
}

int call_helper2(int x);

int call_helper2(int x)
{
	return helper(x);
}
