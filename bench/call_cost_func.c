// SPDX-License-Identifier: MIT
/*
 * call_cost_func.c - the two functions bench/call_cost calls, in their own
 * file and marked noipa so that every call in the measuring loops is a real
 * call: GCC neither inlines them nor learns from their bodies (a pure
 * function's call could otherwise be hoisted out of the loop).
 */
#include "call_cost.h"

__attribute__((noipa)) unsigned long cc_old(unsigned long x)
{
	return CC_OLD_BODY(x);
}

__attribute__((noipa)) unsigned long cc_new_equiv(unsigned long x)
{
	return CC_NEW_BODY(x);
}

/*
 * Stand-ins for the redirection, to tell its parts apart (each ends up in
 * cc_new_equiv()):
 *   cc_jmp_direct    jmp rel32                  (a direct entry jump: what a
 *                                                patched call would cost if
 *                                                the entry jumped straight to
 *                                                the new code)
 *   cc_jmp_indirect  jmp *ptr(%rip)             (the slot's steady entry alone)
 *   cc_jmp_both      jmp rel32 -> jmp *ptr(%rip) (the shape of a patched call
 *                                                in ulp: entry jump, then slot)
 *   cc_jmp_dyn1..4   jmp *cc_dyn_ptr1..4(%rip)  (pointers the target sets:
 *                                                once patched, to the patch's
 *                                                new function, to the slot; at
 *                                                start, to copies of
 *                                                cc_new_equiv's code mapped
 *                                                near the executable and far
 *                                                from it)
 * The pointers are in .data.rel.ro and .data, not next to the code as in a
 * slot page.
 */
__asm__(".text\n"
	".p2align 4\n"
	".globl cc_jmp_direct\n"
	".type cc_jmp_direct, @function\n"
	"cc_jmp_direct:\n"
	"\t{disp32} jmp cc_new_equiv\n"
	".size cc_jmp_direct, .-cc_jmp_direct\n"
	".p2align 4\n"
	".globl cc_jmp_indirect\n"
	".type cc_jmp_indirect, @function\n"
	"cc_jmp_indirect:\n"
	"\tjmp *cc_new_ptr(%rip)\n"
	".size cc_jmp_indirect, .-cc_jmp_indirect\n"
	".p2align 4\n"
	".globl cc_jmp_both\n"
	".type cc_jmp_both, @function\n"
	"cc_jmp_both:\n"
	"\t{disp32} jmp cc_slot_emul\n"
	".size cc_jmp_both, .-cc_jmp_both\n"
	".p2align 4\n"
	".globl cc_jmp_dyn1\n"
	".type cc_jmp_dyn1, @function\n"
	"cc_jmp_dyn1:\n"
	"\tjmp *cc_dyn_ptr1(%rip)\n"
	".size cc_jmp_dyn1, .-cc_jmp_dyn1\n"
	".p2align 4\n"
	".globl cc_jmp_dyn2\n"
	".type cc_jmp_dyn2, @function\n"
	"cc_jmp_dyn2:\n"
	"\tjmp *cc_dyn_ptr2(%rip)\n"
	".size cc_jmp_dyn2, .-cc_jmp_dyn2\n"
	".p2align 4\n"
	".globl cc_jmp_dyn3\n"
	".type cc_jmp_dyn3, @function\n"
	"cc_jmp_dyn3:\n"
	"\tjmp *cc_dyn_ptr3(%rip)\n"
	".size cc_jmp_dyn3, .-cc_jmp_dyn3\n"
	".p2align 4\n"
	".globl cc_jmp_dyn4\n"
	".type cc_jmp_dyn4, @function\n"
	"cc_jmp_dyn4:\n"
	"\tjmp *cc_dyn_ptr4(%rip)\n"
	".size cc_jmp_dyn4, .-cc_jmp_dyn4\n"
	".p2align 4\n"
	"cc_slot_emul:\n"
	"\tjmp *cc_new_ptr2(%rip)\n"
	".section .data.rel.ro,\"aw\"\n"
	".p2align 3\n"
	"cc_new_ptr:\n"
	"\t.quad cc_new_equiv\n"
	"cc_new_ptr2:\n"
	"\t.quad cc_new_equiv\n"
	".data\n"
	".p2align 3\n"
	".globl cc_dyn_ptr1\n"
	"cc_dyn_ptr1:\n"
	"\t.quad cc_new_equiv\n"
	".globl cc_dyn_ptr2\n"
	"cc_dyn_ptr2:\n"
	"\t.quad cc_new_equiv\n"
	".globl cc_dyn_ptr3\n"
	"cc_dyn_ptr3:\n"
	"\t.quad cc_new_equiv\n"
	".globl cc_dyn_ptr4\n"
	"cc_dyn_ptr4:\n"
	"\t.quad cc_new_equiv\n"
	".text\n");
