// SPDX-License-Identifier: MIT
/*
 * fill.c - fill(), the function displaced_bytes.sh patches, written in
 * assembly so its first bytes are known exactly:
 *
 *   entry+0  31 c0     xor  %eax,%eax
 *   entry+2  f3 aa     rep stosb          <- where a busy thread sits
 *   entry+4  90        nop
 *   entry+5  c3        ret
 *
 * long fill(void *buf, long unused1, long unused2, size_t len) zeroes len
 * bytes at buf (rdi = buf, rcx = len: the operands of rep stosb) and
 * returns 0.  With a buffer of tens of MiB one call lasts milliseconds and
 * a thread interrupted while in it almost always has rip == entry+2, on
 * the rep stosb: inside the 5 bytes ulp overwrites with its entry jump.
 * rep stosb is restartable: resumed at the same instruction (or at its
 * relocated copy) with the same registers, it finishes the job.
 *
 * The CFI says "nothing pushed, return address at the CFA": a remote
 * unwinder can walk out of fill() from any of its instructions.
 */
long fill(void *buf, long unused1, long unused2, unsigned long len);

__asm__(".text\n"
	".globl fill\n"
	".type fill, @function\n"
	".p2align 4\n"
	"fill:\n"
	"\t.cfi_startproc\n"
	"\txorl %eax, %eax\n"
	"\trep stosb\n"
	"\tnop\n"
	"\tret\n"
	"\t.cfi_endproc\n"
	".size fill, .-fill\n");
