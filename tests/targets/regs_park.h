// SPDX-License-Identifier: MIT
#ifndef REGS_PARK_H
#define REGS_PARK_H

#include <stdint.h>

/* rbx rbp r12-r15 r8-r10 (8 bytes each), xmm0-15, ymm0-15 upper halves */
#define REGS_PATTERN_SIZE (256 + 256 + 9 * 8)

/* What regs_park() found in the registers when read() returned. */
struct regs_dump {
	uint64_t ret;
	uint64_t gpr[9]; /* rbx rbp r12 r13 r14 r15 r8 r9 r10, as in the pattern */
	uint64_t rdi, rdx;
	uint8_t xmm[16][16];
	uint8_t ymm_hi[16][16];
};

extern unsigned char regs_pattern[REGS_PATTERN_SIZE];

long regs_park(int fd, int avx, struct regs_dump *out);

#endif
