// SPDX-License-Identifier: MIT
/*
 * gate.c - the functions stack_safety.sh patches.  Compiled at -O0 (see
 * CMakeLists.txt) and noipa, like compute.c: every call really happens,
 * nothing is inlined, each function keeps its own frame.
 *
 *   value_fn(x)        x + 1
 *   gate(fd, x)        blocks reading one byte from fd, then value_fn(x):
 *                      while blocked, gate's own frame is on the stack
 *   gate_callee(fd, x) block_here(fd), then value_fn(x): while blocked,
 *                      gate_callee is one frame further up the stack,
 *                      below block_here (never patched)
 *
 * patch_gate.so changes value_fn to x + 1000 and both gates to
 * value_fn(x) + 500000, so a result tells which gate ran with which
 * value_fn: 8 (old, old), 1007 (old gate, new value_fn), 500008 (new gate,
 * old value_fn), 501007 (new, new) for x = 7.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int value_fn(int x);
int gate(int fd, int x);
int gate_callee(int fd, int x);
int block_here(int fd);

__attribute__((noipa, used)) int value_fn(int x)
{
	return x + 1;
}

/*
 * Read one byte from fd, restarting on EINTR; exit(3) on EOF or error.
 * Always inlined (even at -O0): the read() call sits in the caller's frame.
 */
static inline __attribute__((always_inline)) int read_byte(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		perror("gate: read");
		exit(3);
	}
	return c;
}

__attribute__((noipa, used)) int block_here(int fd)
{
	return read_byte(fd);
}

__attribute__((noipa, used)) int gate(int fd, int x)
{
	read_byte(fd);
	return value_fn(x);
}

__attribute__((noipa, used)) int gate_callee(int fd, int x)
{
	block_here(fd);
	return value_fn(x);
}
