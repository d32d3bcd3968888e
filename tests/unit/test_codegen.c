/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libpatch/codegen.c: prologue displacement and relocation,
 * rip mapping, entry jumps and slots.  The relocated code is checked both by
 * decoding it with Zydis and by running it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include <Zydis/Zydis.h>

#include "codegen.h"
#include "error.h"

struct dec {
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

static void decode(const uint8_t *buf, size_t len, struct dec *d)
{
	ZydisDecoder dec;

	assert_true(ZYAN_SUCCESS(
		ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)));
	assert_true(ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, buf, len, &d->insn, d->ops)));
}

/* The absolute address the first RIP-relative operand of d refers to, run at addr. */
static uint64_t rel_target(const struct dec *d, uint64_t addr)
{
	for (unsigned i = 0; i < d->insn.operand_count_visible; i++) {
		const ZydisDecodedOperand *op = &d->ops[i];
		uint64_t t;

		if ((op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op->imm.is_relative) ||
		    (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_RIP)) {
			assert_true(ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&d->insn, op, addr, &t)));
			return t;
		}
	}
	fail_msg("instruction has no relative operand");
	return 0;
}

/* Check that tramp ends with a jump (either form) to `back`, starting at offset at. */
static void assert_jump_back(const struct ulp_prologue *p, size_t at, uint64_t back)
{
	struct dec d;

	decode(p->tramp + at, p->tramp_len - at, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JMP);
	if (d.ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		assert_int_equal(d.insn.length, 5);
		assert_int_equal(p->tramp_len, at + 5);
		assert_int_equal(rel_target(&d, p->tramp_addr + at), back);
	} else {
		uint64_t ptr;

		assert_int_equal(d.insn.length, 6);
		assert_int_equal(p->tramp_len, at + 14);
		assert_int_equal(rel_target(&d, p->tramp_addr + at), p->tramp_addr + at + 6);
		memcpy(&ptr, p->tramp + at + 6, sizeof(ptr));
		assert_int_equal(ptr, back);
	}
}

/* push rbp; mov rbp,rsp; sub rsp,0x10; mov [rbp-4],edi; leave; ret */
static const uint8_t plain_fn[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec,
				    0x10, 0x89, 0x7d, 0xfc, 0xc9, 0xc3 };

static void test_plain_prologue(void **state)
{
	struct ulp_prologue p;
	(void)state;

	assert_int_equal(ulp_prologue_build(plain_fn, sizeof(plain_fn), 0x401136, 0x500000, &p), 0);
	assert_int_equal(p.func_addr, 0x401136);
	assert_int_equal(p.patch_addr, 0x401136);
	assert_int_equal(p.displaced_len, 8);
	assert_int_equal(p.nr_insns, 3);
	assert_int_equal(p.insn_off[0], 0);
	assert_int_equal(p.insn_off[1], 1);
	assert_int_equal(p.insn_off[2], 4);
	assert_memory_equal(p.orig, plain_fn, 8);
	assert_int_equal(p.tramp_addr, 0x500000);
	/* Nothing position-dependent: copied verbatim, then the jump back. */
	assert_memory_equal(p.tramp, plain_fn, 8);
	for (size_t i = 0; i < p.nr_insns; i++)
		assert_int_equal(p.reloc_off[i], p.insn_off[i]);
	assert_int_equal(p.tramp[8], 0xe9);
	assert_jump_back(&p, 8, 0x401136 + 8);
}

static void test_endbr64(void **state)
{
	uint8_t code[4 + sizeof(plain_fn)] = { 0xf3, 0x0f, 0x1e, 0xfa };
	struct ulp_prologue p;
	(void)state;

	memcpy(code + 4, plain_fn, sizeof(plain_fn));
	assert_int_equal(ulp_prologue_build(code, sizeof(code), 0x401130, 0x500000, &p), 0);
	assert_int_equal(p.func_addr, 0x401130);
	assert_int_equal(p.patch_addr, 0x401134);
	assert_int_equal(p.displaced_len, 8);
	assert_int_equal(p.nr_insns, 3);
	assert_memory_equal(p.orig, plain_fn, 8);
	assert_memory_equal(p.tramp, plain_fn, 8);
	assert_jump_back(&p, 8, 0x401134 + 8);

	/* endbr64 followed by only 4 bytes: too short. */
	static const uint8_t short_endbr[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xc0, 0xff, 0xc3 };
	ulp_error_clear();
	assert_int_equal(
		ulp_prologue_build(short_endbr, sizeof(short_endbr), 0x401130, 0x500000, &p),
		-ENOSPC);
	assert_non_null(strstr(ulp_last_error(), "0x401130"));
	assert_non_null(strstr(ulp_last_error(), "too short"));
}

static void test_rip_relative(void **state)
{
	/*
	 * mov rax,[rip+0x2000]; lea rdi,[rip-0x100]; cmp byte [rip+0x30],0x7f; ret
	 * Every displaced instruction refers to memory RIP-relatively.
	 */
	static const uint8_t code[] = { 0x48, 0x8b, 0x05, 0x00, 0x20, 0x00, 0x00, 0x48,
					0x8d, 0x3d, 0x00, 0xff, 0xff, 0xff, 0x80, 0x3d,
					0x30, 0x00, 0x00, 0x00, 0x7f, 0xc3 };
	const uint64_t func = 0x401000, tramp = 0x40401000;
	struct ulp_prologue p;
	struct dec d;
	(void)state;

	assert_int_equal(ulp_prologue_build(code, sizeof(code), func, tramp, &p), 0);
	/* mov alone is 7 bytes: enough. */
	assert_int_equal(p.displaced_len, 7);
	assert_int_equal(p.nr_insns, 1);
	decode(p.tramp, p.tramp_len, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_MOV);
	assert_int_equal(d.ops[1].type, ZYDIS_OPERAND_TYPE_MEMORY);
	assert_int_equal(d.ops[1].mem.base, ZYDIS_REGISTER_RIP);
	assert_int_equal(d.ops[0].reg.value, ZYDIS_REGISTER_RAX);
	assert_int_equal(rel_target(&d, tramp), func + 7 + 0x2000);
	assert_memory_not_equal(p.tramp, code, 7);
	assert_jump_back(&p, d.insn.length, func + 7);

	/* From the lea on: lea (7) is displaced with it. */
	assert_int_equal(ulp_prologue_build(code + 7, sizeof(code) - 7, func + 7, tramp, &p), 0);
	assert_int_equal(p.nr_insns, 1);
	decode(p.tramp, p.tramp_len, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_LEA);
	assert_int_equal(d.ops[0].reg.value, ZYDIS_REGISTER_RDI);
	assert_int_equal(rel_target(&d, tramp), func + 14 - 0x100);

	/* cmp with an immediate after the displacement: the immediate survives. */
	assert_int_equal(ulp_prologue_build(code + 14, sizeof(code) - 14, func + 14, tramp, &p), 0);
	assert_int_equal(p.displaced_len, 7);
	decode(p.tramp, p.tramp_len, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_CMP);
	assert_int_equal(d.ops[0].size, 8);
	assert_int_equal(rel_target(&d, tramp), func + 21 + 0x30);
	assert_int_equal(d.ops[1].type, ZYDIS_OPERAND_TYPE_IMMEDIATE);
	assert_int_equal(d.ops[1].imm.value.u, 0x7f);
}

static void test_jcc_rel8_widened(void **state)
{
	/* test edi,edi; je +0x10; xor eax,eax; ...; target: ret */
	uint8_t code[32];
	const uint64_t func = 0x401000, tramp = 0x10401000;
	struct ulp_prologue p;
	struct dec d;
	(void)state;

	memset(code, 0x90, sizeof(code));
	code[0] = 0x85, code[1] = 0xff;
	code[2] = 0x74, code[3] = 0x10;
	code[4] = 0x31, code[5] = 0xc0;
	code[0x14] = 0xc3;

	assert_int_equal(ulp_prologue_build(code, sizeof(code), func, tramp, &p), 0);
	assert_int_equal(p.displaced_len, 6);
	assert_int_equal(p.nr_insns, 3);
	assert_int_equal(p.insn_off[1], 2);
	assert_int_equal(p.insn_off[2], 4);

	assert_memory_equal(p.tramp, code, 2);
	assert_int_equal(p.reloc_off[1], 2);
	decode(p.tramp + 2, p.tramp_len - 2, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JZ);
	assert_int_equal(d.insn.length, 6);
	assert_int_equal(rel_target(&d, tramp + 2), func + 0x14);
	assert_int_equal(p.reloc_off[2], 8);
	assert_memory_equal(p.tramp + 8, code + 4, 2);
	assert_jump_back(&p, 10, func + 6);
}

static void test_too_short(void **state)
{
	static const uint8_t tiny[] = { 0x31, 0xc0, 0xc3 };
	/* The instruction at +3 (mov eax, imm32) runs past the 5 bytes given. */
	static const uint8_t truncated[] = { 0x90, 0x90, 0x90, 0xb8, 0x01 };
	struct ulp_prologue p;
	(void)state;

	ulp_error_clear();
	assert_int_equal(ulp_prologue_build(tiny, sizeof(tiny), 0x401136, 0x500000, &p), -ENOSPC);
	assert_string_equal(ulp_last_error(),
			    "function at 0x401136 is too short to patch (3 bytes, need 5)");

	ulp_error_clear();
	assert_int_equal(ulp_prologue_build(truncated, sizeof(truncated), 0x401136, 0x500000, &p),
			 -ENOSPC);
	assert_non_null(strstr(ulp_last_error(), "0x401136"));

	assert_int_equal(ulp_prologue_build(tiny, 0, 0x401136, 0x500000, &p), -ENOSPC);
}

static void expect_notsup(const uint8_t *code, size_t size, const char *word)
{
	struct ulp_prologue p;

	ulp_error_clear();
	assert_int_equal(ulp_prologue_build(code, size, 0x401136, 0x500000, &p), -ENOTSUP);
	assert_non_null(strstr(ulp_last_error(), "0x401136"));
	assert_non_null(strstr(ulp_last_error(), word));
}

static void test_refused_insns(void **state)
{
	/* call rel32 first */
	static const uint8_t call[] = { 0xe8, 0x00, 0x00, 0x00, 0x00, 0xc3 };
	/* push rbp; call rax */
	static const uint8_t call_ind[] = { 0x55, 0xff, 0xd0, 0x5d, 0xc3, 0x90 };
	/* xor eax,eax; ret; padding */
	static const uint8_t ret[] = { 0x31, 0xc0, 0xc3, 0x90, 0x90, 0x90 };
	/* jmp rax */
	static const uint8_t jmp_ind[] = { 0xff, 0xe0, 0x90, 0x90, 0x90, 0x90 };
	/* 0x06 (push es) is invalid in 64-bit mode */
	static const uint8_t bad[] = { 0x55, 0x06, 0x90, 0x90, 0x90, 0x90 };
	(void)state;

	expect_notsup(call, sizeof(call), "call");
	expect_notsup(call_ind, sizeof(call_ind), "call");
	expect_notsup(ret, sizeof(ret), "return");
	expect_notsup(jmp_ind, sizeof(jmp_ind), "jump");
	expect_notsup(bad, sizeof(bad), "undecodable");
}

static void test_branch_into_displaced(void **state)
{
	/*
	 *  0: push rbp; 1: mov rbp,rsp; 4: xor eax,eax    (displaced: 6 bytes)
	 *  6: inc eax; 8: cmp eax,edi; 10: jl 4; 12: pop rbp; 13: ret
	 */
	uint8_t loop[] = { 0x55, 0x48, 0x89, 0xe5, 0x31, 0xc0, 0xff,
			   0xc0, 0x39, 0xf8, 0x7c, 0xf8, 0x5d, 0xc3 };
	struct ulp_prologue p;
	(void)state;

	ulp_error_clear();
	assert_int_equal(ulp_prologue_build(loop, sizeof(loop), 0x401136, 0x500000, &p), -ELOOP);
	assert_non_null(strstr(ulp_last_error(), "function at 0x401136"));
	assert_non_null(strstr(ulp_last_error(), "branch at 0x401140"));
	assert_non_null(strstr(ulp_last_error(), "cannot patch it safely"));

	/* Back to the entry itself goes through the entry jump: fine. */
	loop[11] = 0xf4; /* jl 0 */
	assert_int_equal(ulp_prologue_build(loop, sizeof(loop), 0x401136, 0x500000, &p), 0);
	/* Just past the displaced bytes: fine too. */
	loop[11] = 0xfa; /* jl 6 */
	assert_int_equal(ulp_prologue_build(loop, sizeof(loop), 0x401136, 0x500000, &p), 0);
	loop[11] = 0xf9; /* jl 5: mid-instruction, still inside */
	assert_int_equal(ulp_prologue_build(loop, sizeof(loop), 0x401136, 0x500000, &p), -ELOOP);

	/* A displaced branch to the start of the displaced bytes. */
	static const uint8_t self[] = { 0x31, 0xc0, 0x74, 0xfc, 0xff, 0xc0, 0xc3 };
	ulp_error_clear();
	assert_int_equal(ulp_prologue_build(self, sizeof(self), 0x401136, 0x500000, &p), -ELOOP);
	assert_non_null(strstr(ulp_last_error(), "0x401136"));

	/* With endbr64, a loop back to the entry (the endbr64) is fine. */
	static const uint8_t endbr_loop[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5,
					      0xff, 0xc0, 0x39, 0xf8, 0x7c, 0xf2, 0x5d, 0xc3 };
	assert_int_equal(ulp_prologue_build(endbr_loop, sizeof(endbr_loop), 0x401130, 0x500000, &p),
			 0);
	assert_int_equal(p.displaced_len, 6);
}

static void test_out_of_range(void **state)
{
	static const uint8_t rip_mov[] = { 0x48, 0x8b, 0x05, 0x00, 0x20, 0x00, 0x00, 0xc3 };
	static const uint8_t jcc[] = { 0x85, 0xff, 0x74, 0x02, 0x31, 0xc0, 0xc3, 0xc3 };
	const uint64_t func = 0x401000, far = 0x7f0000000000;
	struct ulp_prologue p;
	(void)state;

	ulp_error_clear();
	assert_int_equal(ulp_prologue_build(rip_mov, sizeof(rip_mov), func, far, &p), -ERANGE);
	assert_non_null(strstr(ulp_last_error(), "0x401000"));
	assert_int_equal(ulp_prologue_build(jcc, sizeof(jcc), func, far, &p), -ERANGE);

	/* Just in reach vs just out of it, for the mov's target 0x403007. */
	const uint64_t target = func + 7 + 0x2000;
	assert_int_equal(
		ulp_prologue_build(rip_mov, sizeof(rip_mov), func, target + 0x80000000ULL, &p),
		-ERANGE);
	assert_int_equal(
		ulp_prologue_build(rip_mov, sizeof(rip_mov), func, target + 0x7ffffff0, &p), 0);

	/* Position-independent code far away: the jump back goes absolute. */
	assert_int_equal(ulp_prologue_build(plain_fn, sizeof(plain_fn), func, far, &p), 0);
	assert_int_equal(p.tramp[8], 0xff);
	assert_int_equal(p.tramp[9], 0x25);
	assert_jump_back(&p, 8, func + 8);
}

static void test_map_rip(void **state)
{
	struct ulp_prologue p;
	uint64_t rip = 0;
	const uint64_t func = 0x401000, tramp = 0x10401000;
	uint8_t code[32];
	(void)state;

	/* Boundaries at 0, 2, 4 with relocated copies at 0, 2, 8. */
	memset(code, 0x90, sizeof(code));
	code[0] = 0x85, code[1] = 0xff;
	code[2] = 0x74, code[3] = 0x10;
	code[4] = 0x31, code[5] = 0xc0;
	assert_int_equal(ulp_prologue_build(code, sizeof(code), func, tramp, &p), 0);

	static const uint64_t from[] = { 0, 2, 4 }, to[] = { 0, 2, 8 };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(ulp_prologue_map_rip(&p, func + from[i], &rip), 0);
		assert_int_equal(rip, tramp + to[i]);
	}
	assert_int_equal(ulp_prologue_map_rip(&p, func + 1, &rip), -EINVAL);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 3, &rip), -EINVAL);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 5, &rip), -EINVAL);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 6, &rip), -EINVAL);
	assert_int_equal(ulp_prologue_map_rip(&p, func - 1, &rip), -EINVAL);

	/* With endbr64 the entry itself is not displaced. */
	uint8_t ecode[4 + sizeof(plain_fn)] = { 0xf3, 0x0f, 0x1e, 0xfa };
	memcpy(ecode + 4, plain_fn, sizeof(plain_fn));
	assert_int_equal(ulp_prologue_build(ecode, sizeof(ecode), func, tramp, &p), 0);
	assert_int_equal(ulp_prologue_map_rip(&p, func, &rip), -EINVAL);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 4, &rip), 0);
	assert_int_equal(rip, tramp);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 5, &rip), 0);
	assert_int_equal(rip, tramp + 1);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 8, &rip), 0);
	assert_int_equal(rip, tramp + 4);
	assert_int_equal(ulp_prologue_map_rip(&p, func + 12, &rip), -EINVAL);
}

static void test_jmp_rel32(void **state)
{
	uint8_t b[ULP_JMP_REL32_LEN];
	const uint64_t from = 0x100000000;
	(void)state;

	assert_int_equal(ulp_encode_jmp_rel32(0x1000, 0x2000, b), 0);
	assert_memory_equal(b, ((uint8_t[]){ 0xe9, 0xfb, 0x0f, 0x00, 0x00 }), 5);
	assert_int_equal(ulp_encode_jmp_rel32(0x2000, 0x1000, b), 0);
	assert_memory_equal(b, ((uint8_t[]){ 0xe9, 0xfb, 0xef, 0xff, 0xff }), 5);

	assert_int_equal(ulp_encode_jmp_rel32(from, from + 5 + INT32_MAX, b), 0);
	assert_memory_equal(b, ((uint8_t[]){ 0xe9, 0xff, 0xff, 0xff, 0x7f }), 5);
	assert_int_equal(ulp_encode_jmp_rel32(from, from + 5 + INT32_MAX + 1ULL, b), -ERANGE);
	assert_int_equal(ulp_encode_jmp_rel32(from, from + 5 - 0x80000000ULL, b), 0);
	assert_memory_equal(b, ((uint8_t[]){ 0xe9, 0x00, 0x00, 0x00, 0x80 }), 5);
	assert_int_equal(ulp_encode_jmp_rel32(from, from + 5 - 0x80000001ULL, b), -ERANGE);
	assert_int_equal(ulp_encode_jmp_rel32(0x401000, 0x7f0000000000, b), -ERANGE);
}

static void check_dispatch(const uint8_t *slot_bytes, uint64_t slot, size_t at, int32_t tls_offset,
			   uint8_t gen, size_t eq_ptr, size_t ne_ptr);

static void check_slot(int32_t tls_offset)
{
	const uint64_t slot = 0x7f0000001000, func = 0x7f0000100000;
	const uint64_t new_func = 0x7f1234567890, tramp = slot + ULP_SLOT_TRAMP_OFF;
	uint8_t out[ULP_SLOT_SIZE];
	struct ulp_prologue p;
	struct dec d;
	uint64_t ptr;

	assert_int_equal(ulp_prologue_build(plain_fn, sizeof(plain_fn), func, tramp, &p), 0);
	assert_int_equal(ulp_slot_build(out, slot, tls_offset, 0x5a, new_func, tramp, 0, &p), 0);
	check_dispatch(out, slot, ULP_SLOT_DISPATCH_OFF, tls_offset, 0x5a, ULP_SLOT_NEW_PTR_OFF,
		       ULP_SLOT_PREV_PTR_OFF);
	check_dispatch(out, slot, ULP_SLOT_UNPATCH_OFF, tls_offset, 0x5a, ULP_SLOT_PREV_PTR_OFF,
		       ULP_SLOT_NEW_PTR_OFF);
	for (size_t i = ULP_SLOT_DISPATCH_LEN; i < ULP_SLOT_STEADY_OFF; i++)
		assert_int_equal(out[i], 0xcc);

	/* +32: jmp *new_ptr(%rip) */
	decode(out + ULP_SLOT_STEADY_OFF, sizeof(out) - ULP_SLOT_STEADY_OFF, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JMP);
	assert_int_equal(d.insn.length, 6);
	assert_int_equal(rel_target(&d, slot + ULP_SLOT_STEADY_OFF), slot + ULP_SLOT_NEW_PTR_OFF);
	for (size_t i = ULP_SLOT_STEADY_OFF + 6; i < ULP_SLOT_CHECK_PTR_OFF; i++)
		assert_int_equal(out[i], 0xcc);
	memcpy(&ptr, out + ULP_SLOT_CHECK_PTR_OFF, sizeof(ptr));
	assert_int_equal(ptr, 0);

	memcpy(&ptr, out + ULP_SLOT_NEW_PTR_OFF, sizeof(ptr));
	assert_int_equal(ptr, new_func);
	memcpy(&ptr, out + ULP_SLOT_PREV_PTR_OFF, sizeof(ptr));
	assert_int_equal(ptr, tramp);
	assert_memory_equal(out + ULP_SLOT_TRAMP_OFF, p.tramp, p.tramp_len);
	for (size_t i = ULP_SLOT_TRAMP_OFF + p.tramp_len; i < ULP_SLOT_UNPATCH_OFF; i++)
		assert_int_equal(out[i], 0xcc);
	for (size_t i = ULP_SLOT_UNPATCH_OFF + ULP_SLOT_DISPATCH_LEN; i < ULP_SLOT_SIZE; i++)
		assert_int_equal(out[i], 0xcc);
}

/* cmpb $gen, %fs:tls_offset; jne 1f; jmp *eq_ptr(%rip); 1: jmp *ne_ptr(%rip) at slot+at */
static void check_dispatch(const uint8_t *slot_bytes, uint64_t slot, size_t at, int32_t tls_offset,
			   uint8_t gen, size_t eq_ptr, size_t ne_ptr)
{
	const uint8_t *out = slot_bytes + at;
	size_t room = ULP_SLOT_SIZE - at;
	struct dec d;

	slot += at;
	/* cmpb $gen, %fs:tls_offset -- fs-relative absolute, not RIP-relative */
	decode(out, room, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_CMP);
	assert_int_equal(d.insn.length, 9);
	assert_int_equal(d.ops[0].type, ZYDIS_OPERAND_TYPE_MEMORY);
	assert_int_equal(d.ops[0].size, 8);
	assert_int_equal(d.ops[0].mem.segment, ZYDIS_REGISTER_FS);
	assert_int_equal(d.ops[0].mem.base, ZYDIS_REGISTER_NONE);
	assert_int_equal(d.ops[0].mem.index, ZYDIS_REGISTER_NONE);
	assert_int_equal(d.ops[0].mem.disp.value, tls_offset);
	assert_int_equal(d.ops[1].type, ZYDIS_OPERAND_TYPE_IMMEDIATE);
	assert_int_equal(d.ops[1].imm.value.u, gen);

	/* +9: jne +17 */
	decode(out + 9, room - 9, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JNZ);
	assert_int_equal(d.insn.length, 2);
	assert_int_equal(rel_target(&d, slot + 9), slot + 17);

	/* +11: jmp *eq_ptr(%rip), taken by threads switched to gen */
	decode(out + 11, room - 11, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JMP);
	assert_int_equal(d.insn.length, 6);
	assert_int_equal(rel_target(&d, slot + 11), slot - at + eq_ptr);

	/* +17: jmp *ne_ptr(%rip) */
	decode(out + 17, room - 17, &d);
	assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JMP);
	assert_int_equal(d.insn.length, 6);
	assert_int_equal(rel_target(&d, slot + 17), slot - at + ne_ptr);
}

static void test_slot_bytes(void **state)
{
	(void)state;

	check_slot(-0x40);
	check_slot(0x12345678);
	check_slot(INT32_MIN);
}

static void test_slot_invalid(void **state)
{
	const uint64_t slot = 0x7f0000001000;
	uint8_t out[ULP_SLOT_SIZE];
	struct ulp_prologue p;
	(void)state;

	assert_int_equal(ulp_prologue_build(plain_fn, sizeof(plain_fn), 0x7f0000100000,
					    slot + ULP_SLOT_TRAMP_OFF + 16, &p),
			 0);
	assert_int_equal(ulp_slot_build(out, slot, -8, 0, 1, 2, 0, &p), -EINVAL);
	p.tramp_addr = slot + ULP_SLOT_TRAMP_OFF;
	p.tramp_len = ULP_TRAMPOLINE_MAX + 1;
	assert_int_equal(ulp_slot_build(out, slot, -8, 0, 1, 2, 0, &p), -EINVAL);
}

/* ---- running the generated code ---- */

#define RWX_SIZE (4u << 20)

static uint8_t *rwx;

static int rwx_setup(void **state)
{
	(void)state;
	rwx = mmap(NULL, RWX_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (rwx == MAP_FAILED) {
		rwx = NULL;
		return 0; /* each test skips */
	}
	memset(rwx, 0xcc, RWX_SIZE);
	return 0;
}

static int rwx_teardown(void **state)
{
	(void)state;
	if (rwx)
		munmap(rwx, RWX_SIZE);
	rwx = NULL;
	return 0;
}

typedef int (*int_fn)(int);

static int_fn as_fn(uint64_t addr)
{
	return (int_fn)(uintptr_t)addr;
}

static uint64_t addr_of(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* int f(int x) { return x * 2 + 1; } as gcc -O0 emits it */
static const uint8_t f_code[] = {
	0x55, /* push rbp */
	0x48, 0x89, 0xe5, /* mov rbp,rsp */
	0x89, 0x7d, 0xfc, /* mov [rbp-4],edi */
	0x8b, 0x45, 0xfc, /* mov eax,[rbp-4] */
	0x01, 0xc0, /* add eax,eax */
	0x83, 0xc0, 0x01, /* add eax,1 */
	0x5d, /* pop rbp */
	0xc3, /* ret */
};

static void test_exec_trampoline(void **state)
{
	struct ulp_prologue p;
	uint8_t *func, *tramp;
	(void)state;

	if (!rwx)
		skip();
	func = rwx + 0x100;
	tramp = rwx + 0x200000;
	memcpy(func, f_code, sizeof(f_code));

	assert_int_equal(
		ulp_prologue_build(func, sizeof(f_code), addr_of(func), addr_of(tramp), &p), 0);
	assert_int_equal(p.displaced_len, 7);
	memcpy(tramp, p.tramp, p.tramp_len);
	__builtin___clear_cache((char *)tramp, (char *)tramp + p.tramp_len);

	for (int x = -3; x <= 1000; x += 97) {
		int want = as_fn(addr_of(func))(x);

		assert_int_equal(want, x * 2 + 1);
		assert_int_equal(as_fn(addr_of(tramp))(x), want);
	}
}

static void test_exec_relocated(void **state)
{
	/*
	 *  0: test edi,edi
	 *  2: je 13
	 *  4: mov eax,[rip+0xf6]     ; the int at +0x100
	 * 10: add eax,edi
	 * 12: ret
	 * 13: mov eax,42
	 * 18: ret
	 * All three displaced instructions depend on where they run.
	 */
	static const uint8_t code[] = { 0x85, 0xff, 0x74, 0x09, 0x8b, 0x05, 0xf6, 0x00, 0x00, 0x00,
					0x01, 0xf8, 0xc3, 0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3 };
	const int data = 1000;
	struct ulp_prologue p;
	uint8_t *func, *tramp;
	(void)state;

	if (!rwx)
		skip();
	func = rwx + 0x1000;
	tramp = rwx + 0x300000; /* far beyond rel8 reach */
	memcpy(func, code, sizeof(code));
	memcpy(func + 0x100, &data, sizeof(data));

	assert_int_equal(ulp_prologue_build(func, sizeof(code), addr_of(func), addr_of(tramp), &p),
			 0);
	assert_int_equal(p.displaced_len, 10);
	assert_int_equal(p.nr_insns, 3);
	memcpy(tramp, p.tramp, p.tramp_len);
	__builtin___clear_cache((char *)tramp, (char *)tramp + p.tramp_len);

	assert_int_equal(as_fn(addr_of(func))(0), 42);
	assert_int_equal(as_fn(addr_of(func))(5), 1005);
	assert_int_equal(as_fn(addr_of(tramp))(0), 42);
	assert_int_equal(as_fn(addr_of(tramp))(5), 1005);
	assert_int_equal(as_fn(addr_of(tramp))(-7), 993);
}

static __thread unsigned char thread_patch_state;

static int new_f(int x)
{
	return x * 100;
}

static void test_exec_slot(void **state)
{
	uint8_t slot_bytes[ULP_SLOT_SIZE], jmp[ULP_JMP_REL32_LEN];
	uint64_t fs_base, slot, func_addr;
	struct ulp_prologue p;
	uint8_t *func;
	int64_t off;
	(void)state;

	if (!rwx)
		skip();
	func = rwx + 0x2000;
	memcpy(func, f_code, sizeof(f_code));
	func_addr = addr_of(func);
	slot = addr_of(rwx + 0x100000);

	__asm__ volatile("mov %%fs:0, %0" : "=r"(fs_base));
	off = (int64_t)(addr_of(&thread_patch_state) - fs_base);
	assert_true(off >= INT32_MIN && off <= INT32_MAX);

	assert_int_equal(
		ulp_prologue_build(func, sizeof(f_code), func_addr, slot + ULP_SLOT_TRAMP_OFF, &p),
		0);
	assert_int_equal(ulp_slot_build(slot_bytes, slot, (int32_t)off, 7, addr_of((void *)new_f),
					slot + ULP_SLOT_TRAMP_OFF, 0, &p),
			 0);
	memcpy((void *)(uintptr_t)slot, slot_bytes, sizeof(slot_bytes));

	/* The slot on its own: generation 7 is the transition's. */
	thread_patch_state = 7;
	assert_int_equal(as_fn(slot + ULP_SLOT_DISPATCH_OFF)(3), 300);
	assert_int_equal(as_fn(slot + ULP_SLOT_UNPATCH_OFF)(3), 7);
	thread_patch_state = 6;
	assert_int_equal(as_fn(slot + ULP_SLOT_DISPATCH_OFF)(3), 7);
	assert_int_equal(as_fn(slot + ULP_SLOT_UNPATCH_OFF)(3), 300);
	thread_patch_state = ULP_THREAD_GEN_INITIAL;
	assert_int_equal(as_fn(slot + ULP_SLOT_DISPATCH_OFF)(3), 7);
	assert_int_equal(as_fn(slot + ULP_SLOT_STEADY_OFF)(3), 300);
	/* a revert rewrites the unpatching dispatch for its own generation */
	ulp_dispatch_build((uint8_t *)(uintptr_t)slot + ULP_SLOT_UNPATCH_OFF, ULP_SLOT_UNPATCH_OFF,
			   (int32_t)off, 8, false);
	__builtin___clear_cache((char *)(uintptr_t)slot, (char *)(uintptr_t)slot + ULP_SLOT_SIZE);
	thread_patch_state = 8;
	assert_int_equal(as_fn(slot + ULP_SLOT_UNPATCH_OFF)(3), 7);
	thread_patch_state = 7;
	assert_int_equal(as_fn(slot + ULP_SLOT_UNPATCH_OFF)(3), 300);

	/* Now through the entry jump, as a patched process runs it. */
	assert_int_equal(ulp_encode_jmp_rel32(p.patch_addr, slot + ULP_SLOT_DISPATCH_OFF, jmp), 0);
	memcpy(func, jmp, sizeof(jmp));
	__builtin___clear_cache((char *)func, (char *)func + sizeof(jmp));
	thread_patch_state = 7;
	assert_int_equal(as_fn(func_addr)(3), 300);
	thread_patch_state = 6;
	assert_int_equal(as_fn(func_addr)(3), 7);
	assert_int_equal(as_fn(func_addr)(-4), -7);

	assert_int_equal(ulp_encode_jmp_rel32(p.patch_addr, slot + ULP_SLOT_STEADY_OFF, jmp), 0);
	memcpy(func, jmp, sizeof(jmp));
	__builtin___clear_cache((char *)func, (char *)func + sizeof(jmp));
	assert_int_equal(as_fn(func_addr)(3), 300);
	thread_patch_state = 0;
}

/*
 * A stand-in for the runtime's self-switch entry: switches the thread to the
 * dispatch's generation (tls offset at +4, generation at +8 of the dispatch
 * in %r11) and goes back to the dispatch, keeping the argument registers.
 */
__asm__(".text\n"
	"fake_self_check:\n"
	"	movslq 4(%r11), %r10\n"
	"	push %rax\n"
	"	movzbl 8(%r11), %eax\n"
	"	mov %al, %fs:(%r10)\n"
	"	pop %rax\n"
	"	jmp *%r11\n");
extern const char fake_self_check[];

/* With a self-switch entry, a thread not switched goes there first, then the dispatch decides. */
static void test_slot_self_check(void **state)
{
	const uint64_t check = 0x7f00deadbee0;
	uint8_t slot_bytes[ULP_SLOT_SIZE];
	uint64_t fs_base, slot, func_addr, ptr;
	struct ulp_prologue p;
	struct dec d;
	uint8_t *func;
	int64_t off;
	(void)state;

	if (!rwx)
		skip();
	func = rwx + 0x3000;
	memcpy(func, f_code, sizeof(f_code));
	func_addr = addr_of(func);
	slot = addr_of(rwx + 0x101000);
	__asm__ volatile("mov %%fs:0, %0" : "=r"(fs_base));
	off = (int64_t)(addr_of(&thread_patch_state) - fs_base);
	assert_int_equal(
		ulp_prologue_build(func, sizeof(f_code), func_addr, slot + ULP_SLOT_TRAMP_OFF, &p),
		0);

	/* the bytes: lea of the dispatch into %r11, then jmp *check_ptr(%rip) */
	assert_int_equal(ulp_slot_build(slot_bytes, slot, (int32_t)off, 9, addr_of((void *)new_f),
					slot + ULP_SLOT_TRAMP_OFF, check, &p),
			 0);
	for (size_t at = ULP_SLOT_DISPATCH_OFF; at <= ULP_SLOT_UNPATCH_OFF;
	     at += ULP_SLOT_UNPATCH_OFF - ULP_SLOT_DISPATCH_OFF) {
		decode(slot_bytes + at + 17, ULP_SLOT_DISPATCH_LEN - 17, &d);
		assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_LEA);
		assert_int_equal(rel_target(&d, slot + at + 17), slot + at);
		decode(slot_bytes + at + 24, ULP_SLOT_DISPATCH_LEN - 24, &d);
		assert_int_equal(d.insn.mnemonic, ZYDIS_MNEMONIC_JMP);
		assert_int_equal(rel_target(&d, slot + at + 24), slot + ULP_SLOT_CHECK_PTR_OFF);
	}
	memcpy(&ptr, slot_bytes + ULP_SLOT_CHECK_PTR_OFF, sizeof(ptr));
	assert_int_equal(ptr, check);

	/* run it: the stand-in switches the thread, the dispatch then runs the new version */
	assert_int_equal(ulp_slot_build(slot_bytes, slot, (int32_t)off, 9, addr_of((void *)new_f),
					slot + ULP_SLOT_TRAMP_OFF, addr_of(fake_self_check), &p),
			 0);
	memcpy((void *)(uintptr_t)slot, slot_bytes, sizeof(slot_bytes));
	__builtin___clear_cache((char *)(uintptr_t)slot, (char *)(uintptr_t)slot + ULP_SLOT_SIZE);
	thread_patch_state = 8;
	assert_int_equal(as_fn(slot + ULP_SLOT_DISPATCH_OFF)(3), 300);
	assert_int_equal(thread_patch_state, 9);
	/* the unpatching dispatch: switched threads run the previous version */
	thread_patch_state = 8;
	assert_int_equal(as_fn(slot + ULP_SLOT_UNPATCH_OFF)(3), 7);
	assert_int_equal(thread_patch_state, 9);
	thread_patch_state = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_prologue),
		cmocka_unit_test(test_endbr64),
		cmocka_unit_test(test_rip_relative),
		cmocka_unit_test(test_jcc_rel8_widened),
		cmocka_unit_test(test_too_short),
		cmocka_unit_test(test_refused_insns),
		cmocka_unit_test(test_branch_into_displaced),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_map_rip),
		cmocka_unit_test(test_jmp_rel32),
		cmocka_unit_test(test_slot_bytes),
		cmocka_unit_test(test_slot_invalid),
		cmocka_unit_test(test_exec_trampoline),
		cmocka_unit_test(test_exec_relocated),
		cmocka_unit_test(test_exec_slot),
		cmocka_unit_test(test_slot_self_check),
	};

	return cmocka_run_group_tests(tests, rwx_setup, rwx_teardown);
}
