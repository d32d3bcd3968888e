// SPDX-License-Identifier: MIT
/*
 * compute.c - the function the tests patch.  Compiled at -O0 (see
 * CMakeLists.txt) so its prologue is "push %rbp; mov %rsp,%rbp; ...".
 * noipa: callers learn nothing from the body (no hoisting of this "const"
 * call out of a loop, no clones): every call really happens.
 */
int compute(int x);

__attribute__((noipa, used)) int compute(int x)
{
	return x + 1;
}
