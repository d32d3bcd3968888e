/* SPDX-License-Identifier: MIT */
#include "placement.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "error.h"

#define ULP_PAGE 4096ull
/* vm.mmap_min_addr's default: nothing is ever mapped below it. */
#define ULP_MMAP_MIN (1ull << 16)
#define ULP_USER_TOP 0x7ffffffff000ull

static uint64_t ulp_page_down(uint64_t a)
{
	return a & ~(ULP_PAGE - 1);
}

static uint64_t ulp_page_up(uint64_t a)
{
	return (a + ULP_PAGE - 1) & ~(ULP_PAGE - 1);
}

/* The free gap before maps[i] (i == nr: after the last), less the stack's room. */
static void ulp_gap(const struct ulp_map_area *maps, size_t nr, size_t i, uint64_t stack_room,
		    uint64_t *gs, uint64_t *ge)
{
	*gs = i ? maps[i - 1].end : ULP_MMAP_MIN;
	*ge = i < nr ? maps[i].start : ULP_USER_TOP;
	if (*ge > ULP_USER_TOP)
		*ge = ULP_USER_TOP;
	if (i < nr && maps[i].stack)
		*ge = *ge > stack_room ? *ge - stack_room : 0;
}

int ulp_placement_plan(const struct ulp_map_area *maps, size_t nr, uint64_t lo, uint64_t hi,
		       uint64_t len, uint64_t stack_room, uint64_t heap_room,
		       struct ulp_placement *out)
{
	uint64_t best_dist = UINT64_MAX, top = 0;
	uint64_t top_lim = lo + ULP_REL32_REACH;
	uint64_t bot_lim = hi > ULP_REL32_REACH ? hi - ULP_REL32_REACH : 0;

	len = ulp_page_up(len);
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i <= nr; i++) {
		uint64_t gs, ge, t, b, cand, dist;

		ulp_gap(maps, nr, i, stack_room, &gs, &ge);
		if (i && maps[i - 1].heap)
			gs += heap_room; /* brk keeps room to grow, beyond the reservations */
		t = ulp_page_down(ge < top_lim ? ge : top_lim);
		b = ulp_page_up(gs > bot_lim ? gs : bot_lim);
		if (t <= b || t - b < len)
			continue;
		if (t <= lo) {
			cand = t; /* below the object: as close under it as possible */
			dist = lo - t;
		} else if (b >= hi) {
			cand = b + len; /* above it: as close over it as possible */
			dist = b - hi;
		} else {
			cand = t;
			dist = 0;
		}
		if (dist < best_dist) {
			best_dist = dist;
			top = cand;
		}
	}
	if (!top)
		return ulp_errorf(-ENOSPC, "no free %llu bytes within 2 GiB of 0x%llx-0x%llx",
				  (unsigned long long)len, (unsigned long long)lo,
				  (unsigned long long)hi);
	out->at = top - len;
	/* Fill every gap above the spot in which the loader's mmap() could land instead. */
	for (size_t i = 0; i <= nr; i++) {
		uint64_t gs, ge;

		ulp_gap(maps, nr, i, stack_room, &gs, &ge);
		if (ge <= top)
			continue;
		if (gs < top)
			gs = top;
		gs = ulp_page_up(gs);
		ge = ulp_page_down(ge);
		if (ge <= gs || ge - gs < len)
			continue;
		if (out->nr_reserve == ULP_PLACEMENT_MAX_RESERVE)
			return ulp_errorf(-E2BIG, "more than %d free gaps to reserve",
					  ULP_PLACEMENT_MAX_RESERVE);
		out->reserve[out->nr_reserve][0] = gs;
		out->reserve[out->nr_reserve][1] = ge - gs;
		out->nr_reserve++;
	}
	return 0;
}

int ulp_placement_map_size(const char *path, uint64_t *len)
{
	uint64_t lo = UINT64_MAX, hi = 0, align = ULP_PAGE;
	size_t nr_ph;
	int fd, ret = 0;
	Elf *elf;

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ulp_errorf(-errno, "cannot open %s: %s", path, strerror(errno));
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &nr_ph) != 0) {
		ret = ulp_errorf(-ENOEXEC, "%s: cannot read program headers: %s", path,
				 elf_errmsg(-1));
		goto out;
	}
	for (size_t i = 0; i < nr_ph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr < lo)
			lo = ph.p_vaddr;
		if (ph.p_vaddr + ph.p_memsz > hi)
			hi = ph.p_vaddr + ph.p_memsz;
		if (ph.p_align > align)
			align = ph.p_align;
	}
	if (hi <= lo) {
		ret = ulp_errorf(-ENOEXEC, "%s: no loadable segment", path);
		goto out;
	}
	/* glibc maps span + alignment - page to align a larger-than-page p_align */
	*len = ulp_page_up(hi - ulp_page_down(lo)) + (align - ULP_PAGE);
out:
	elf_end(elf);
	close(fd);
	return ret;
}
