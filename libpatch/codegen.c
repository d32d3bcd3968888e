/* SPDX-License-Identifier: MIT */
/*
 * Code generation for function redirection: see codegen.h for the layout.
 *
 * Instructions are decoded and re-encoded with Zydis; only the fixed slot
 * templates (whose exact bytes the slot layout defines) are emitted by hand.
 */
#include "codegen.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <Zydis/Zydis.h>

static const uint8_t endbr64[ULP_ENDBR64_LEN] = { 0xf3, 0x0f, 0x1e, 0xfa };

struct decoded {
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

static void decoder_init(ZydisDecoder *dec)
{
	ZydisDecoderInit(dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
}

/*
 * The absolute target of a relative branch (jmp, jcc, loop, jrcxz, call,
 * xbegin).  RIP-relative memory operands are data, not control flow, so they
 * don't count here.
 */
static bool branch_target(const struct decoded *d, uint64_t addr, uint64_t *target)
{
	for (unsigned i = 0; i < d->insn.operand_count_visible; i++) {
		const ZydisDecodedOperand *op = &d->ops[i];

		if (op->type != ZYDIS_OPERAND_TYPE_IMMEDIATE || !op->imm.is_relative)
			continue;
		if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&d->insn, op, addr, target)))
			return false;
		return true;
	}
	return false;
}

/* Control transfers whose effect depends on where they run or leave the function. */
static const char *unrelocatable(const struct decoded *d)
{
	switch (d->insn.meta.category) {
	case ZYDIS_CATEGORY_CALL:
		/* The callee would return into the trampoline, and the return
		 * address it sees is not one the unwinder knows. */
		return "a call";
	case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_SYSRET:
		return "a return";
	default:
		break;
	}
	switch (d->insn.mnemonic) {
	case ZYDIS_MNEMONIC_IRET:
	case ZYDIS_MNEMONIC_IRETD:
	case ZYDIS_MNEMONIC_IRETQ:
		return "a return";
	case ZYDIS_MNEMONIC_JMP:
		if (!(d->insn.attributes & ZYDIS_ATTRIB_IS_RELATIVE) ||
		    d->insn.meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
			return "an indirect jump";
		break;
	default:
		break;
	}
	return NULL;
}

/* The absolute address an instruction refers to RIP-relatively (branch or memory). */
static bool rip_target(const struct decoded *d, uint64_t addr, uint64_t *target)
{
	for (unsigned i = 0; i < d->insn.operand_count_visible; i++) {
		const ZydisDecodedOperand *op = &d->ops[i];
		bool rel = (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op->imm.is_relative) ||
			   (op->type == ZYDIS_OPERAND_TYPE_MEMORY &&
			    op->mem.base == ZYDIS_REGISTER_RIP);

		if (rel)
			return ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&d->insn, op, addr, target));
	}
	return false;
}

static bool in_rel32_reach(uint64_t next_ip, uint64_t target)
{
	int64_t delta = (int64_t)(target - next_ip);

	return delta >= INT32_MIN && delta <= INT32_MAX;
}

/*
 * Re-encode one instruction that refers to something RIP-relatively so that,
 * run at `to`, it refers to the same absolute address it did at `from`.
 */
static int relocate_relative(const ZydisDecoder *dec, const struct decoded *d, uint64_t func_addr,
			     uint64_t from, uint64_t to, uint8_t *buf, size_t room, size_t *len)
{
	ZydisEncoderRequest req;
	ZyanUSize n = room;
	uint64_t target, check;
	struct decoded re;

	if (!rip_target(d, from, &target))
		return ulp_errorf(-ENOTSUP,
				  "function at 0x%" PRIx64 " has an instruction at 0x%" PRIx64
				  " whose target cannot be computed; cannot relocate it",
				  func_addr, from);

	memset(&req, 0, sizeof(req));
	if (!ZYAN_SUCCESS(ZydisEncoderDecodedInstructionToEncoderRequest(
		    &d->insn, d->ops, d->insn.operand_count_visible, &req)))
		return ulp_errorf(-ENOTSUP,
				  "function at 0x%" PRIx64 " has an instruction at 0x%" PRIx64
				  " that cannot be re-encoded",
				  func_addr, from);

	/* The absolute encoder wants absolute targets where relative ones were. */
	for (unsigned i = 0; i < req.operand_count; i++) {
		ZydisEncoderOperand *op = &req.operands[i];

		if (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_RIP)
			op->mem.displacement = (int64_t)target;
		else if (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
			 d->ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
			 d->ops[i].imm.is_relative)
			op->imm.u = target;
	}
	/* A short jmp/jcc rarely reaches its target from the trampoline: let
	 * the encoder pick the width the new distance needs. */
	if (d->insn.meta.category == ZYDIS_CATEGORY_COND_BR ||
	    d->insn.meta.category == ZYDIS_CATEGORY_UNCOND_BR) {
		req.branch_type = ZYDIS_BRANCH_TYPE_NONE;
		req.branch_width = ZYDIS_BRANCH_WIDTH_NONE;
	}

	if (!ZYAN_SUCCESS(ZydisEncoderEncodeInstructionAbsolute(&req, buf, &n, to))) {
		/* rel32 counts from the instruction's end, up to 15 bytes on: out
		 * of reach from either end means distance is why it failed. */
		if (!in_rel32_reach(to + 16, target) || !in_rel32_reach(to, target))
			return ulp_errorf(
				-ERANGE,
				"function at 0x%" PRIx64 ": the instruction at 0x%" PRIx64
				" refers to 0x%" PRIx64
				", out of 32-bit reach of its relocated copy at 0x%" PRIx64,
				func_addr, from, target, to);
		return ulp_errorf(-ENOTSUP,
				  "function at 0x%" PRIx64 " has an instruction at 0x%" PRIx64
				  " (%s) that cannot be relocated to 0x%" PRIx64,
				  func_addr, from, ZydisMnemonicGetString(d->insn.mnemonic), to);
	}

	/* Trust but verify: the copy must decode to the same absolute target. */
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(dec, buf, n, &re.insn, re.ops)) ||
	    re.insn.length != n || re.insn.mnemonic != d->insn.mnemonic ||
	    !rip_target(&re, to, &check) || check != target)
		return ulp_errorf(-ENOTSUP,
				  "function at 0x%" PRIx64
				  ": relocating the instruction at 0x%" PRIx64 " to 0x%" PRIx64
				  " did not preserve its target",
				  func_addr, from, to);
	*len = n;
	return 0;
}

/*
 * Any relative branch in the function that lands inside the displaced bytes
 * would, after patching, land in the middle of the entry jump.  A linear sweep
 * is enough: compilers don't put data in x86-64 .text.
 */
static int check_branches_into(const ZydisDecoder *dec, const uint8_t *code, size_t size,
			       uint64_t func_addr, uint64_t lo, uint64_t hi)
{
	size_t off = 0;

	while (off < size) {
		struct decoded d;
		uint64_t addr = func_addr + off, target;

		if (!ZYAN_SUCCESS(
			    ZydisDecoderDecodeFull(dec, code + off, size - off, &d.insn, d.ops))) {
			/* Padding or a truncated last instruction: resync. */
			off++;
			continue;
		}
		if (branch_target(&d, addr, &target) && target > lo && target < hi)
			return ulp_errorf(-ELOOP,
					  "function at 0x%" PRIx64 " has a branch at 0x%" PRIx64
					  " to 0x%" PRIx64 ", inside the %" PRIu64
					  " bytes the entry jump replaces; cannot patch it safely",
					  func_addr, addr, target, hi - lo);
		off += d.insn.length;
	}
	return 0;
}

static int append_jump_back(struct ulp_prologue *out)
{
	uint8_t jmp[ULP_JMP_ABS_LEN];
	size_t len = ulp_encode_jmp(out->tramp_addr + out->tramp_len,
				    out->patch_addr + out->displaced_len, jmp);

	if (out->tramp_len + len > ULP_TRAMPOLINE_MAX)
		return ulp_errorf(-ENOSPC, "function at 0x%" PRIx64 ": trampoline too long",
				  out->func_addr);
	memcpy(out->tramp + out->tramp_len, jmp, len);
	out->tramp_len += len;
	return 0;
}

int ulp_prologue_build(const uint8_t *code, size_t size, uint64_t func_addr, uint64_t tramp_addr,
		       struct ulp_prologue *out)
{
	struct decoded insns[ULP_PROLOGUE_MAX_INSNS];
	ZydisDecoder dec;
	size_t skip = 0, avail, len = 0, n = 0;
	int err;

	if (!code || !out)
		return ulp_errorf(-EINVAL, "ulp_prologue_build: no code or no output");

	memset(out, 0, sizeof(*out));
	decoder_init(&dec);

	if (size >= ULP_ENDBR64_LEN && !memcmp(code, endbr64, ULP_ENDBR64_LEN))
		skip = ULP_ENDBR64_LEN;
	avail = size - skip;
	out->func_addr = func_addr;
	out->patch_addr = func_addr + skip;
	out->tramp_addr = tramp_addr;

	if (avail < ULP_JMP_REL32_LEN)
		return ulp_errorf(-ENOSPC,
				  "function at 0x%" PRIx64
				  " is too short to patch (%zu bytes, need %d)",
				  func_addr, avail, ULP_JMP_REL32_LEN);

	while (len < ULP_JMP_REL32_LEN) {
		struct decoded *d = &insns[n];
		uint64_t addr = out->patch_addr + len;
		ZyanStatus st;
		const char *what;

		st = ZydisDecoderDecodeFull(&dec, code + skip + len, avail - len, &d->insn, d->ops);
		if (st == ZYDIS_STATUS_NO_MORE_DATA)
			return ulp_errorf(-ENOSPC,
					  "function at 0x%" PRIx64
					  " is too short to patch (its instruction at 0x%" PRIx64
					  " runs past its %zu bytes)",
					  func_addr, addr, size);
		if (!ZYAN_SUCCESS(st))
			return ulp_errorf(-ENOTSUP,
					  "function at 0x%" PRIx64
					  " has an undecodable instruction at 0x%" PRIx64
					  " in the bytes the entry jump replaces; cannot patch it",
					  func_addr, addr);
		what = unrelocatable(d);
		if (what)
			return ulp_errorf(
				-ENOTSUP,
				"function at 0x%" PRIx64 " has %s at 0x%" PRIx64
				" in the bytes the entry jump replaces; cannot move it to a trampoline",
				func_addr, what, addr);
		out->insn_off[n] = (uint8_t)len;
		len += d->insn.length;
		n++;
	}
	out->displaced_len = len;
	out->nr_insns = n;
	memcpy(out->orig, code + skip, len);

	/* A displaced branch into the displaced bytes, its own start included,
	 * would run the new entry jump from inside the old version. */
	for (size_t i = 0; i < n; i++) {
		uint64_t addr = out->patch_addr + out->insn_off[i], target;

		if (branch_target(&insns[i], addr, &target) && target >= out->patch_addr &&
		    target < out->patch_addr + len)
			return ulp_errorf(
				-ELOOP,
				"function at 0x%" PRIx64 " has a branch at 0x%" PRIx64
				" to 0x%" PRIx64
				" within the %zu bytes the entry jump replaces; cannot patch it safely",
				func_addr, addr, target, len);
	}
	err = check_branches_into(&dec, code, size, func_addr, out->patch_addr,
				  out->patch_addr + len);
	if (err)
		return err;

	for (size_t i = 0; i < n; i++) {
		const struct decoded *d = &insns[i];
		uint64_t from = out->patch_addr + out->insn_off[i];
		uint64_t to = tramp_addr + out->tramp_len;
		size_t room = ULP_TRAMPOLINE_MAX - out->tramp_len, got = 0;

		out->reloc_off[i] = (uint8_t)out->tramp_len;
		if (d->insn.attributes & ZYDIS_ATTRIB_IS_RELATIVE) {
			err = relocate_relative(&dec, d, func_addr, from, to,
						out->tramp + out->tramp_len, room, &got);
			if (err)
				return err;
		} else {
			got = d->insn.length;
			if (got > room)
				return ulp_errorf(-ENOSPC,
						  "function at 0x%" PRIx64 ": trampoline too long",
						  func_addr);
			memcpy(out->tramp + out->tramp_len, code + skip + out->insn_off[i], got);
		}
		out->tramp_len += got;
	}
	return append_jump_back(out);
}

int ulp_prologue_map_rip(const struct ulp_prologue *p, uint64_t rip, uint64_t *new_rip)
{
	if (!p || !new_rip || rip < p->patch_addr || rip >= p->patch_addr + p->displaced_len)
		return -EINVAL;
	for (size_t i = 0; i < p->nr_insns; i++) {
		if (rip == p->patch_addr + p->insn_off[i]) {
			*new_rip = p->tramp_addr + p->reloc_off[i];
			return 0;
		}
	}
	return -EINVAL;
}

int ulp_encode_jmp_rel32(uint64_t from, uint64_t to, uint8_t out[ULP_JMP_REL32_LEN])
{
	int64_t rel = (int64_t)(to - (from + ULP_JMP_REL32_LEN));
	int32_t rel32;

	if (rel < INT32_MIN || rel > INT32_MAX)
		return -ERANGE;
	rel32 = (int32_t)rel;
	out[0] = 0xe9;
	memcpy(out + 1, &rel32, sizeof(rel32));
	return 0;
}

/*
 * jmp *disp32(%rip) into insn[0..6): an instruction at slot offset `at`
 * reading the pointer at slot offset `ptr`.
 */
size_t ulp_encode_jmp(uint64_t from, uint64_t to, uint8_t out[ULP_JMP_ABS_LEN])
{
	static const uint8_t jmp_abs[6] = { 0xff, 0x25, 0, 0, 0, 0 };

	if (ulp_encode_jmp_rel32(from, to, out) == 0)
		return ULP_JMP_REL32_LEN;
	memcpy(out, jmp_abs, sizeof(jmp_abs));
	memcpy(out + sizeof(jmp_abs), &to, sizeof(to));
	return ULP_JMP_ABS_LEN;
}

static void put_jmp_ind(uint8_t *insn, size_t at, size_t ptr)
{
	int32_t rel = (int32_t)ptr - (int32_t)(at + 6);

	insn[0] = 0xff;
	insn[1] = 0x25;
	memcpy(insn + 2, &rel, sizeof(rel));
}

void ulp_dispatch_build(uint8_t out[ULP_SLOT_DISPATCH_LEN], size_t at, int32_t tls_offset,
			uint8_t gen, bool with_check)
{
	/*
	 * cmpb $gen, %fs:tls_offset -- an absolute fs-relative address (SIB
	 * with no base, no index), so it works from any slot.
	 */
	static const uint8_t cmp_fs[4] = { 0x64, 0x80, 0x3c, 0x25 };
	/* lea -24(%rip), %r11: the dispatch's own address */
	static const uint8_t lea_r11[7] = { 0x4c, 0x8d, 0x1d, 0xe8, 0xff, 0xff, 0xff };
	bool unpatch = at == ULP_SLOT_UNPATCH_OFF;

	memset(out, 0xcc, ULP_SLOT_DISPATCH_LEN);
	memcpy(out, cmp_fs, sizeof(cmp_fs));
	memcpy(out + 4, &tls_offset, sizeof(tls_offset));
	out[8] = gen;
	/* jne over the 6-byte jump taken by switched threads */
	out[9] = 0x75;
	out[10] = 0x06;
	put_jmp_ind(out + 11, at + 11, unpatch ? ULP_SLOT_PREV_PTR_OFF : ULP_SLOT_NEW_PTR_OFF);
	if (with_check) {
		memcpy(out + 17, lea_r11, sizeof(lea_r11));
		put_jmp_ind(out + 24, at + 24, ULP_SLOT_CHECK_PTR_OFF);
	} else {
		put_jmp_ind(out + 17, at + 17,
			    unpatch ? ULP_SLOT_NEW_PTR_OFF : ULP_SLOT_PREV_PTR_OFF);
	}
}

int ulp_slot_build(uint8_t out[ULP_SLOT_SIZE], uint64_t slot_addr, int32_t tls_offset, uint8_t gen,
		   uint64_t new_func, uint64_t prev_func, uint64_t check,
		   const struct ulp_prologue *p)
{
	if (!out || !p)
		return ulp_errorf(-EINVAL, "ulp_slot_build: no output or no prologue");
	/* The trampoline's relative operands were computed for tramp_addr. */
	if (p->tramp_addr != slot_addr + ULP_SLOT_TRAMP_OFF)
		return ulp_errorf(-EINVAL,
				  "trampoline of function at 0x%" PRIx64 " was built for 0x%" PRIx64
				  ", not for the slot at 0x%" PRIx64,
				  p->func_addr, p->tramp_addr, slot_addr);
	if (p->tramp_len > ULP_TRAMPOLINE_MAX ||
	    p->tramp_len > ULP_SLOT_UNPATCH_OFF - ULP_SLOT_TRAMP_OFF)
		return ulp_errorf(-EINVAL,
				  "trampoline of function at 0x%" PRIx64
				  " (%zu bytes) does not fit a slot",
				  p->func_addr, p->tramp_len);

	memset(out, 0xcc, ULP_SLOT_SIZE);
	ulp_dispatch_build(out + ULP_SLOT_DISPATCH_OFF, ULP_SLOT_DISPATCH_OFF, tls_offset, gen,
			   check != 0);
	ulp_dispatch_build(out + ULP_SLOT_UNPATCH_OFF, ULP_SLOT_UNPATCH_OFF, tls_offset, gen,
			   check != 0);
	put_jmp_ind(out + ULP_SLOT_STEADY_OFF, ULP_SLOT_STEADY_OFF, ULP_SLOT_NEW_PTR_OFF);
	memcpy(out + ULP_SLOT_CHECK_PTR_OFF, &check, sizeof(check));
	memcpy(out + ULP_SLOT_NEW_PTR_OFF, &new_func, sizeof(new_func));
	memcpy(out + ULP_SLOT_PREV_PTR_OFF, &prev_func, sizeof(prev_func));
	memcpy(out + ULP_SLOT_TRAMP_OFF, p->tramp, p->tramp_len);
	return 0;
}

_Static_assert(ULP_SLOT_TRAMP_OFF + ULP_TRAMPOLINE_MAX <= ULP_SLOT_UNPATCH_OFF,
	       "the trampoline overlaps the unpatching dispatch");
_Static_assert(ULP_SLOT_DISPATCH_OFF + ULP_SLOT_DISPATCH_LEN <= ULP_SLOT_STEADY_OFF,
	       "the patching dispatch overlaps the steady entry");
_Static_assert(ULP_SLOT_STEADY_OFF + 6 <= ULP_SLOT_CHECK_PTR_OFF,
	       "the steady entry overlaps check_ptr");
_Static_assert(ULP_SLOT_UNPATCH_OFF + ULP_SLOT_DISPATCH_LEN <= ULP_SLOT_SIZE,
	       "the unpatching dispatch does not fit the slot");
