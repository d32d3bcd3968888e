/* SPDX-License-Identifier: MIT */
#include "call_stub.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "memory.h"

/*
 * The stubs' code, assembled with ulpd and copied into targets.  Offsets
 * into struct ulp_call_frame and struct ulp_loader_page are checked below.
 */
__asm__(".pushsection .rodata.ulp_call_stub,\"a\"\n"
	".balign 16\n"
	".globl ulp_call_stub_code\n"
	".hidden ulp_call_stub_code\n"
	"ulp_call_stub_code:\n"
	"	call *%r11\n"
	"	mov %rax, %rbx\n"
	"	mov $39, %eax\n" /* ULP_CALL_STUB_SYSCALL */
	"	syscall\n"
	".globl ulp_call_stub_stop\n"
	".hidden ulp_call_stub_stop\n"
	"ulp_call_stub_stop:\n"
	"	mov 0(%r13), %eax\n"
	"	mov 4(%r13), %edx\n"
	"	xrstor64 (%r12)\n"
	"	lea 8(%r13), %rsp\n"
	"	pop %r15\n"
	"	pop %r14\n"
	"	pop %r13\n"
	"	pop %r12\n"
	"	pop %rbp\n"
	"	pop %rbx\n"
	"	pop %r11\n"
	"	pop %r10\n"
	"	pop %r9\n"
	"	pop %r8\n"
	"	pop %rax\n"
	"	pop %rcx\n"
	"	pop %rdx\n"
	"	pop %rsi\n"
	"	pop %rdi\n"
	"	iretq\n"
	".globl ulp_call_stub_loader\n"
	".hidden ulp_call_stub_loader\n"
	"ulp_call_stub_loader:\n"
	"	push %rbx\n" /* also aligns the stack for the calls */
	"	mov %rdi, %rbx\n"
	"	call *8(%rbx)\n" /* pthread_self() */
	"	mov %rax, %rdi\n"
	"	call *16(%rbx)\n" /* pthread_detach() */
	"	lea 64(%rbx), %rdi\n"
	"	mov $0x102, %esi\n" /* RTLD_NOW | RTLD_GLOBAL */
	"	call *0(%rbx)\n" /* dlopen() */
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	mov %rbx, %rdi\n"
	"	mov $4096, %esi\n"
	"	mov $11, %eax\n" /* munmap(page, 4096) */
	"	syscall\n"
	"	pop %rbx\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	/* failed: dlerror()'s message over the path, for ulpd to read */
	"1:	call *24(%rbx)\n" /* dlerror() */
	"	lea 64(%rbx), %rdi\n"
	"	mov $4000, %ecx\n"
	"	test %rax, %rax\n"
	"	jz 3f\n"
	"2:	movb (%rax), %dl\n"
	"	movb %dl, (%rdi)\n"
	"	test %dl, %dl\n"
	"	jz 4f\n"
	"	inc %rax\n"
	"	inc %rdi\n"
	"	dec %ecx\n"
	"	jnz 2b\n"
	"3:	movb $0, (%rdi)\n"
	"4:	movl $1, 40(%rbx)\n"
	"	pop %rbx\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	".globl ulp_call_stub_end\n"
	".hidden ulp_call_stub_end\n"
	"ulp_call_stub_end:\n"
	".popsection\n");

extern const unsigned char ulp_call_stub_code[], ulp_call_stub_stop[], ulp_call_stub_loader[],
	ulp_call_stub_end[];

_Static_assert(offsetof(struct ulp_call_frame, r15) == 8, "the stub pops from frame+8");
_Static_assert(offsetof(struct ulp_call_frame, rip) == 8 + 15 * 8, "iretq frame after 15 pops");
_Static_assert(sizeof(struct ulp_call_frame) == 8 + 20 * 8, "frame size");
_Static_assert(offsetof(struct ulp_loader_page, pthread_self) == 8 &&
		       offsetof(struct ulp_loader_page, pthread_detach) == 16 &&
		       offsetof(struct ulp_loader_page, dlerror) == 24 &&
		       offsetof(struct ulp_loader_page, failed) == 40 &&
		       offsetof(struct ulp_loader_page, path) == 64 &&
		       sizeof(((struct ulp_loader_page *)0)->path) > 4000,
	       "loader page layout");
_Static_assert(sizeof(struct ulp_loader_page) == 4096, "the loader unmaps one page");

/* Objects whose code pages may hold the stubs, in order of preference. */
static const char *const ulp_stub_homes[] = { "libc.so.6", "ld-linux-x86-64.so.2", "main" };

static int ulp_call_stub_try(struct ulp_process *p, struct ulp_symbols *syms, const char *object,
			     uint64_t *at)
{
	size_t size = (size_t)(ulp_call_stub_end - ulp_call_stub_code), len;
	unsigned char *have;
	uint64_t addr;
	bool blank = true;
	int ret;

	ret = ulp_symbols_code_tail(syms, object, &addr, &len);
	if (ret < 0)
		return ret;
	len -= ((addr + 15) & ~15ull) - addr;
	addr = (addr + 15) & ~15ull;
	if ((ssize_t)len < (ssize_t)size)
		return -ENOSPC;
	have = malloc(size);
	if (!have)
		return -ENOMEM;
	ret = ulp_mem_read(p, addr, have, size);
	if (ret == 0 && memcmp(have, ulp_call_stub_code, size) != 0) {
		for (size_t i = 0; i < size; i++)
			blank = blank && have[i] == 0;
		/* Bytes that are neither ours nor padding: somebody else's. */
		ret = blank ? ulp_mem_write(p, addr, ulp_call_stub_code, size) : -EBUSY;
	}
	free(have);
	if (ret == 0)
		*at = addr;
	return ret;
}

int ulp_call_stub_place(struct ulp_process *p, struct ulp_symbols *syms, struct ulp_call_stub *out)
{
	uint64_t at = 0;
	int ret = -ENOENT;

	for (size_t i = 0; i < sizeof(ulp_stub_homes) / sizeof(ulp_stub_homes[0]); i++) {
		ret = ulp_call_stub_try(p, syms, ulp_stub_homes[i], &at);
		if (ret == 0)
			break;
	}
	ulp_error_clear();
	if (ret < 0)
		return ulp_errorf(
			ret,
			"no room for ulp's %zu bytes of call stub at the end of the code of libc, ld.so or the program in process %d",
			(size_t)(ulp_call_stub_end - ulp_call_stub_code), p->pid);
	out->call = at;
	out->stop = at + (uint64_t)(ulp_call_stub_stop - ulp_call_stub_code);
	out->loader = at + (uint64_t)(ulp_call_stub_loader - ulp_call_stub_code);
	return 0;
}
