// SPDX-License-Identifier: MIT
/*
 * libnotapatch.so - a plain shared library without a ulp patch
 * descriptor: must be refused as "not a ulp patch".
 */
int not_a_patch(int x);

__attribute__((visibility("default"))) int not_a_patch(int x)
{
	return x;
}
