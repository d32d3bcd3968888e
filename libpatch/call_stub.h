/* SPDX-License-Identifier: MIT */
/*
 * The few instructions ulp runs in a target before anything of its own is
 * loaded there, and where they go: the unused end of the last page of
 * libc's code (else ld.so's, else the program's), which is mapped
 * executable and reached by nothing.  No memory is allocated and no page
 * protection changed to place them, and they never change: a later ulpd
 * writes the same bytes over them, even while an earlier ulpd's borrowed
 * thread still runs through them.
 *
 * The call stub: ulpd points a stopped thread at it with the function in
 * %r11, its arguments in the argument registers, %r12 at an XSAVE image
 * and %r13 at a struct ulp_call_frame (both on the thread's own stack,
 * below its red zone).  It calls the function, copies the result to %rbx
 * and makes a getpid() system call, where a living ulpd stops it (ptrace
 * syscall-entry stop) to read the result or start the next call; then it
 * puts back the extended state and every register and returns to the
 * thread's own code with iretq.  So a ulpd killed at any moment leaves the
 * thread to finish the call and go on as if it had never been borrowed.
 *
 * The loader: the start routine of the thread that loads the runtime.  Its
 * argument is a page holding a struct ulp_loader_page; it detaches itself,
 * dlopen()s the path and unmaps the page.  If dlopen() fails it copies
 * dlerror()'s message over the path, sets failed and leaves the page.
 */
#ifndef ULP_CALL_STUB_H
#define ULP_CALL_STUB_H

#include <stdint.h>

#include "process.h"
#include "symbols.h"

/* What the call stub puts back, in its order (an iretq frame last). */
struct ulp_call_frame {
	uint32_t xrstor_mask_lo, xrstor_mask_hi;
	uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct ulp_loader_page {
	uint64_t dlopen, pthread_self, pthread_detach, dlerror;
	/*
	 * ulpd's random number: once the loader unmapped the page, the
	 * process may map anything there, which failed alone cannot tell.
	 */
	uint64_t nonce;
	uint32_t failed; /* set when dlopen() failed; path then holds dlerror() */
	uint32_t pad[5];
	char path[4096 - 64];
};

struct ulp_call_stub {
	uint64_t call; /* entry of the call stub */
	uint64_t stop; /* where the thread is at the stop after each call */
	uint64_t loader; /* the loader thread's start routine */
};

/* The getpid() that ends each call: ulpd stops the thread at its entry. */
#define ULP_CALL_STUB_SYSCALL 39

/*
 * Find room for the stubs in process p and write them there (unless they
 * already are).  Other threads may run meanwhile: nothing reaches those
 * bytes.
 */
int ulp_call_stub_place(struct ulp_process *p, struct ulp_symbols *syms, struct ulp_call_stub *out);

#endif
