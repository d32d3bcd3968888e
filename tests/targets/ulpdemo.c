// SPDX-License-Identifier: MIT
/*
 * ulpdemo.c - libulpdemo.so.1, the shared library whose lib_compute() the
 * shared_lib test patches (also built stripped, with only .dynsym).
 */
int lib_compute(int x);

__attribute__((noipa, visibility("default"))) int lib_compute(int x)
{
	return x + 2;
}
