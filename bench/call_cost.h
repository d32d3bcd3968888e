/* SPDX-License-Identifier: MIT */
/*
 * call_cost.h - the functions bench/call_cost measures, shared by the
 * target (call_cost_func.c) and the patch (patch_call_cost.c) so that the
 * patch's new function and the target's "new-equivalent" are the same code
 * built with the same flags.
 */
#ifndef ULP_BENCH_CALL_COST_H
#define ULP_BENCH_CALL_COST_H

/*
 * The old function: "x * 7 + 3" compiles at -O2 to lea/sub/add/ret, 15 bytes
 * before the ret, long enough for the 5-byte entry jump.
 */
#define CC_OLD_BODY(x) ((x)*7 + 3)
/* The replacement: "x * 5 + 1", one lea and a ret. */
#define CC_NEW_BODY(x) ((x)*5 + 1)

/* The function ulp patches (old body until patched). */
unsigned long cc_old(unsigned long x);
/* A plain function with the replacement's body, called directly. */
unsigned long cc_new_equiv(unsigned long x);
/* cc_new_equiv() reached through stand-ins for parts of the redirection. */
unsigned long cc_jmp_direct(unsigned long x);
unsigned long cc_jmp_indirect(unsigned long x);
unsigned long cc_jmp_both(unsigned long x);
unsigned long cc_jmp_dyn1(unsigned long x);
unsigned long cc_jmp_dyn2(unsigned long x);
unsigned long cc_jmp_dyn3(unsigned long x);
unsigned long cc_jmp_dyn4(unsigned long x);
/* Where cc_jmp_dyn1..4 jump (cc_new_equiv until changed). */
extern void *cc_dyn_ptr1, *cc_dyn_ptr2, *cc_dyn_ptr3, *cc_dyn_ptr4;

#endif
