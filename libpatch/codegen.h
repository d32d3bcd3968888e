/* SPDX-License-Identifier: MIT */
/*
 * Code generation: the entry jump written over a function's prologue, the
 * per-function slot it jumps to, and the trampoline that keeps the original
 * function callable (its displaced prologue relocated with Zydis).
 *
 * Nothing here touches a process: inputs are bytes and addresses, outputs are
 * bytes.  That keeps it unit-testable.
 */
#ifndef ULP_CODEGEN_H
#define ULP_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ULP_JMP_REL32_LEN 5
/* jmp *0(%rip) followed by the absolute address: where no rel32 reaches */
#define ULP_JMP_ABS_LEN 14
/* Distance a rel32 jump is trusted to reach: 2 GiB less a margin. */
#define ULP_REL32_REACH ((1ull << 31) - (1ull << 24))
#define ULP_ENDBR64_LEN 4
#define ULP_PROLOGUE_MAX_INSNS 16
#define ULP_TRAMPOLINE_MAX 160

/*
 * Slot layout (ULP_SLOT_SIZE bytes, 16-byte aligned, one per patched function):
 *
 *   +0   patching dispatch:    cmpb $gen, %fs:tls_offset ; switched to this transition?
 *                              jne  1f
 *                              jmp  *new_ptr(%rip)
 *                           1: lea  0(%rip) of this dispatch, %r11
 *                              jmp  *check_ptr(%rip)     ; the runtime's self-switch check
 *                              (without a check: 1: jmp *prev_ptr(%rip))
 *   +32  steady entry:         jmp  *new_ptr(%rip)
 *   +40  check_ptr (.quad)     runtime/self_switch.c: once per transition a thread not
 *                              switched yet tries to switch itself, then comes back here;
 *                              the runtime reads tls_offset (+4) and gen (+8) from the dispatch
 *   +48  new_ptr  (.quad)      the version threads in the patched state run
 *   +56  prev_ptr (.quad)      the version the others run (usually the trampoline)
 *   +64  trampoline:           relocated displaced instructions
 *                              jmp *back_ptr(%rip)   ; back to func's first undisplaced byte
 *                              back_ptr (.quad)
 *   +224 unpatching dispatch:  the same test, the two jumps swapped
 *   padding with int3 up to ULP_SLOT_SIZE
 *
 * A thread's state byte holds the generation of the last transition it
 * switched to; a transition's generation is one more than the last.  When a
 * transition completes every thread holds its generation, so the next
 * transition needs no per-thread reset (which would need every thread
 * stopped at once): its dispatch simply tests for the next number.
 */
#define ULP_SLOT_SIZE 256
#define ULP_SLOT_DISPATCH_OFF 0
#define ULP_SLOT_STEADY_OFF 32
#define ULP_SLOT_CHECK_PTR_OFF 40
#define ULP_SLOT_NEW_PTR_OFF 48
#define ULP_SLOT_PREV_PTR_OFF 56
#define ULP_SLOT_TRAMP_OFF 64
#define ULP_SLOT_UNPATCH_OFF 224
#define ULP_SLOT_DISPATCH_LEN 30

/* The state byte of a thread that never took part in a transition. */
#define ULP_THREAD_GEN_INITIAL 0xff

struct ulp_prologue {
	uint64_t func_addr; /* the function's entry */
	uint64_t patch_addr; /* where the entry jump goes: func_addr, or +4 after endbr64 */
	size_t displaced_len; /* bytes displaced from patch_addr, >= 5, on an instruction boundary
			       */
	uint8_t orig[32]; /* the original displaced bytes */
	size_t nr_insns; /* instructions displaced */
	uint8_t insn_off[ULP_PROLOGUE_MAX_INSNS]; /* offset of each from patch_addr */
	uint8_t reloc_off[ULP_PROLOGUE_MAX_INSNS]; /* offset of its relocated copy in tramp */
	uint8_t tramp[ULP_TRAMPOLINE_MAX]; /* trampoline bytes, including the jump back */
	size_t tramp_len;
	uint64_t tramp_addr; /* where tramp will live in the target */
};

/*
 * Decide how to redirect the function whose code is code[0..size) at func_addr
 * in the target, and build its trampoline for tramp_addr.  Refuses (negative
 * errno, message via ulp_errorf naming the function address and the reason):
 *   -ENOSPC   function shorter than the bytes that must be displaced
 *   -ENOTSUP  a call, ret, or undecodable instruction among the displaced bytes
 *   -ELOOP    a branch anywhere in the function back into the displaced bytes
 *   -ERANGE   a relocated RIP-relative operand or branch out of reach of tramp_addr
 */
int ulp_prologue_build(const uint8_t *code, size_t size, uint64_t func_addr, uint64_t tramp_addr,
		       struct ulp_prologue *out);

/*
 * A thread stopped at rip inside [patch_addr, patch_addr + displaced_len)
 * must continue in the trampoline instead.  Gives the equivalent address, or
 * -EINVAL if rip is not at the start of a displaced instruction.
 */
int ulp_prologue_map_rip(const struct ulp_prologue *p, uint64_t rip, uint64_t *new_rip);

/* jmp rel32 at `from` to `to`; -ERANGE if out of reach. */
int ulp_encode_jmp_rel32(uint64_t from, uint64_t to, uint8_t out[ULP_JMP_REL32_LEN]);

/* A jump at `from` to `to`: jmp rel32 when in reach, else the absolute form; its length. */
size_t ulp_encode_jmp(uint64_t from, uint64_t to, uint8_t out[ULP_JMP_ABS_LEN]);

/*
 * Fill a whole slot for slot_addr: both dispatches testing for generation
 * gen at tls_offset (offset of the state byte from %fs base, usually
 * negative), the new/prev pointers, and the trampoline from p
 * (p->tramp_addr must equal slot_addr + ULP_SLOT_TRAMP_OFF).  check: the
 * runtime's self-switch entry, or 0 for dispatches without it.
 */
int ulp_slot_build(uint8_t out[ULP_SLOT_SIZE], uint64_t slot_addr, int32_t tls_offset, uint8_t gen,
		   uint64_t new_func, uint64_t prev_func, uint64_t check,
		   const struct ulp_prologue *p);

/*
 * The dispatch at slot offset `at` (ULP_SLOT_DISPATCH_OFF or
 * ULP_SLOT_UNPATCH_OFF): threads whose state byte equals gen run new_ptr
 * (patching) or prev_ptr (unpatching), the others the opposite, through
 * the self-switch check at check_ptr if with_check.
 */
void ulp_dispatch_build(uint8_t out[ULP_SLOT_DISPATCH_LEN], size_t at, int32_t tls_offset,
			uint8_t gen, bool with_check);

#endif
