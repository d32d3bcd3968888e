/* SPDX-License-Identifier: MIT */
/*
 * Threads switching themselves.  During a transition a slot's dispatch
 * sends a thread that has not switched yet here, once per transition (the
 * "tried" byte next to its state byte), right at the entry of a function
 * being changed: none of its code has run in this call, so the thread can
 * switch if its own stack holds none of the busy code ulpd published.  It
 * unwinds itself with libunwind (local), which is what makes a thread that
 * spends nearly all its time inside a patched function switch at its next
 * call, instead of waiting for ulpd to catch it outside.  ulpd's stop-based
 * checks (libpatch/transition.c) remain for every thread this does not
 * switch.
 *
 * The entry is entered by a jump from a dispatch at a function's entry:
 * the argument registers are live and must survive, %r11 holds the
 * dispatch's address.  It saves everything the C code may clobber,
 * including the whole extended state (xsave), and comes back to the
 * dispatch, which then sends the thread to the version its state selects.
 */
#define UNW_LOCAL_ONLY
#include <cpuid.h>
#include <libunwind.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

#define ULP_SELF_MAX_FRAMES 256

/* Threads between the entry's count and uncount: ulpd frees slots only at 0. */
uint32_t ulp_rt_checks_running __attribute__((visibility("hidden")));
/* Bytes xsave writes for the features the kernel enabled. */
uint32_t ulp_rt_xsave_size __attribute__((visibility("hidden")));

void ulp_rt_self_check(const uint8_t *dispatch) __attribute__((visibility("hidden")));

/* clang-format off */
__asm__(
	".text\n"
	".globl ulp_rt_self_check_entry\n"
	".hidden ulp_rt_self_check_entry\n"
	".type ulp_rt_self_check_entry,@function\n"
	".p2align 4\n"
	"ulp_rt_self_check_entry:\n"
	".cfi_startproc\n"
	"	push %rax\n"
	".cfi_adjust_cfa_offset 8\n"
	"	push %r10\n"
	".cfi_adjust_cfa_offset 8\n"
	/* the dispatch holds the state byte's offset (+4) and the generation (+8) */
	"	movslq 4(%r11), %r10\n"
	"	movzbl 8(%r11), %eax\n"
	"	cmpb %al, %fs:1(%r10)\n"
	"	je ulp_rt_self_check_old\n"
	"	movb %al, %fs:1(%r10)\n"
	"	lock incl ulp_rt_checks_running(%rip)\n"
	".globl ulp_rt_self_check_counted\n"
	".hidden ulp_rt_self_check_counted\n"
	"ulp_rt_self_check_counted:\n"
	"	push %rbp\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %rbp, 0\n"
	"	mov %rsp, %rbp\n"
	".cfi_def_cfa_register %rbp\n"
	"	push %rdi\n"
	"	push %rsi\n"
	"	push %rdx\n"
	"	push %rcx\n"
	"	push %r8\n"
	"	push %r9\n"
	"	push %r11\n"
	"	push %rbx\n"
	"	mov ulp_rt_xsave_size(%rip), %ebx\n"
	"	sub %rbx, %rsp\n"
	"	and $-64, %rsp\n"
	/* the xsave header must start zeroed */
	"	xor %eax, %eax\n"
	"	mov %rax, 512(%rsp)\n"
	"	mov %rax, 520(%rsp)\n"
	"	mov %rax, 528(%rsp)\n"
	"	mov %rax, 536(%rsp)\n"
	"	mov %rax, 544(%rsp)\n"
	"	mov %rax, 552(%rsp)\n"
	"	mov %rax, 560(%rsp)\n"
	"	mov %rax, 568(%rsp)\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xsave64 (%rsp)\n"
	"	mov %r11, %rdi\n"
	"	call ulp_rt_self_check\n"
	"	mov $-1, %eax\n"
	"	mov $-1, %edx\n"
	"	xrstor64 (%rsp)\n"
	"	lea -64(%rbp), %rsp\n"
	"	pop %rbx\n"
	"	pop %r11\n"
	"	pop %r9\n"
	"	pop %r8\n"
	"	pop %rcx\n"
	"	pop %rdx\n"
	"	pop %rsi\n"
	"	pop %rdi\n"
	"	pop %rbp\n"
	".cfi_def_cfa %rsp, 24\n"
	".cfi_restore %rbp\n"
	"	lock decl ulp_rt_checks_running(%rip)\n"
	".globl ulp_rt_self_check_uncounted\n"
	".hidden ulp_rt_self_check_uncounted\n"
	"ulp_rt_self_check_uncounted:\n"
	"	pop %r10\n"
	".cfi_adjust_cfa_offset -8\n"
	"	pop %rax\n"
	".cfi_adjust_cfa_offset -8\n"
	/* again through the dispatch: switched now, or sent on below */
	"	jmp *%r11\n"
	".cfi_adjust_cfa_offset 16\n"
	"ulp_rt_self_check_old:\n"
	/* tried already: where the dispatch sends a thread that has not switched */
	"	mov %r11, %r10\n"
	"	and $-256, %r10\n"
	"	cmp %r10, %r11\n"
	"	jne 1f\n"
	"	mov 56(%r10), %r11\n"
	"	jmp 2f\n"
	"1:	mov 48(%r10), %r11\n"
	"2:	pop %r10\n"
	".cfi_adjust_cfa_offset -8\n"
	"	pop %rax\n"
	".cfi_adjust_cfa_offset -8\n"
	"	jmp *%r11\n"
	".cfi_endproc\n"
	".globl ulp_rt_self_check_end\n"
	".hidden ulp_rt_self_check_end\n"
	"ulp_rt_self_check_end:\n"
	".size ulp_rt_self_check_entry, .-ulp_rt_self_check_entry\n");
/* clang-format on */

extern const char ulp_rt_self_check_entry[], ulp_rt_self_check_counted[],
	ulp_rt_self_check_uncounted[], ulp_rt_self_check_end[];

static bool ulp_in_busy(const uint64_t (*ranges)[2], uint32_t nr, uint64_t ip)
{
	for (uint32_t i = 0; i < nr; i++)
		if (ip >= ranges[i][0] && ip < ranges[i][1])
			return true;
	return false;
}

/*
 * Without unwind information libunwind guesses (frame pointers, or "the
 * outermost frame") and can skip frames: such a stack proves nothing.  It
 * reports the missing information only as a made-up one-byte procedure.
 */
static bool ulp_has_unwind_info(unw_cursor_t *c, unw_word_t ip)
{
	unw_proc_info_t pi;

	if (unw_get_proc_info(c, &pi) < 0)
		return false;
	return !(pi.format == UNW_INFO_FORMAT_DYNAMIC && pi.start_ip == ip && pi.end_ip == ip + 1);
}

void ulp_rt_self_check(const uint8_t *dispatch)
{
	const uint64_t(*ranges)[2] = (const uint64_t(*)[2])ulp_rt_info.self_ranges;
	unsigned char gen = dispatch[8], before = ulp_thread_tls.state;
	uint32_t want, nr;
	unw_context_t uc;
	unw_cursor_t c;
	int depth;

	/*
	 * ulpd publishes the busy code of the transition threads may switch
	 * themselves to, and changes it only while that is not active.
	 */
	want = __atomic_load_n(&ulp_rt_info.self_state, __ATOMIC_ACQUIRE);
	nr = __atomic_load_n(&ulp_rt_info.self_nr, __ATOMIC_RELAXED);
	if (want != (ULP_RT_SELF_ACTIVE | gen) || nr > ULP_RT_SELF_RANGES)
		return;
	if (unw_getcontext(&uc) < 0 || unw_init_local(&c, &uc) < 0)
		return;
	for (depth = 0; depth < ULP_SELF_MAX_FRAMES; depth++) {
		unw_word_t ip;
		int r;

		if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || !ulp_has_unwind_info(&c, ip))
			return;
		/* frame 0 is this function; the others hold return addresses */
		if (depth > 0 && ulp_in_busy(ranges, nr, ip - 1))
			return;
		r = unw_step(&c);
		if (r == 0)
			break; /* the outermost frame: the whole stack is known clean */
		if (r < 0)
			return; /* cannot tell: leave it to ulpd */
	}
	if (depth == ULP_SELF_MAX_FRAMES ||
	    __atomic_load_n(&ulp_rt_info.self_state, __ATOMIC_ACQUIRE) != want)
		return;
	/* unless ulpd switched it meanwhile (it may even be in a later transition) */
	if (__atomic_compare_exchange_n(&ulp_thread_tls.state, &before, gen, false,
					__ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
		uint32_t i = __atomic_fetch_add(&ulp_rt_info.self_done_nr, 1, __ATOMIC_RELAXED);

		if (i < ULP_RT_SELF_DONE_MAX) {
			ulp_rt_info.self_done[i].gen = gen;
			__atomic_store_n(&ulp_rt_info.self_done[i].tid,
					 (int32_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
		}
	}
}

void ulp_rt_self_switch_init(void)
{
	unsigned a, b, c, d;

	/* xsave needs the OS's support (OSXSAVE, CPUID.1:ECX bit 27) */
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
		return;
	__cpuid_count(0xd, 0, a, b, c, d);
	if (b < 576)
		return;
	ulp_rt_xsave_size = b;
	ulp_rt_info.self_check_entry = (uint64_t)(uintptr_t)ulp_rt_self_check_entry;
	ulp_rt_info.self_check_uncounted[0][0] = (uint64_t)(uintptr_t)ulp_rt_self_check_entry;
	ulp_rt_info.self_check_uncounted[0][1] = (uint64_t)(uintptr_t)ulp_rt_self_check_counted;
	ulp_rt_info.self_check_uncounted[1][0] = (uint64_t)(uintptr_t)ulp_rt_self_check_uncounted;
	ulp_rt_info.self_check_uncounted[1][1] = (uint64_t)(uintptr_t)ulp_rt_self_check_end;
	ulp_rt_info.checks_running = (uint64_t)(uintptr_t)&ulp_rt_checks_running;
}
