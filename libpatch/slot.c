/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "slot.h"

#include "codegen.h"
#include "engine.h"
#include "error.h"
#include "inject.h"
#include "memory.h"
#include "placement.h"
#include "process.h"
#include "procfs.h"
#include "rt_abi.h"

#define ULP_MMAP_MIN (1ull << 16)
#define ULP_USER_TOP 0x7ffffffff000ull

static bool ulp_in_reach(uint64_t a, uint64_t b)
{
	return (a > b ? a - b : b - a) < ULP_REL32_REACH;
}

/* The free page nearest to `near` within reach, or 0. */
static uint64_t ulp_find_free_page(const struct ulp_map_area *a, size_t n, uint64_t near)
{
	uint64_t best = 0, best_dist = UINT64_MAX;

	for (size_t i = 0; i <= n; i++) {
		uint64_t lo = i ? a[i - 1].end : ULP_MMAP_MIN;
		uint64_t hi = i < n ? a[i].start : ULP_USER_TOP;
		uint64_t cand, dist;

		if (i && a[i - 1].heap)
			lo += ULP_BRK_ROOM;
		if (hi <= lo || hi - lo < ULP_SLOT_PAGE_SIZE)
			continue;
		if (hi <= near)
			cand = hi - ULP_SLOT_PAGE_SIZE;
		else if (lo >= near)
			cand = lo;
		else
			cand = near & ~(uint64_t)(ULP_SLOT_PAGE_SIZE - 1);
		if (!ulp_in_reach(cand, near))
			continue;
		dist = cand > near ? cand - near : near - cand;
		if (dist < best_dist) {
			best = cand;
			best_dist = dist;
		}
	}
	return best;
}

static int ulp_slot_map_page(struct ulp_target *t, struct ulp_process *p, uint64_t near,
			     uint64_t *page)
{
	struct ulp_map_area *areas;
	uint64_t fn_mmap, ret;
	size_t nr;
	int rc;

	rc = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_mmap), &fn_mmap);
	if (rc < 0)
		return rc;
	/* Another mapping may appear between reading the maps and mapping:
	 * MAP_FIXED_NOREPLACE refuses then, and we look again. */
	for (int attempt = 0; attempt < 8; attempt++) {
		uint64_t cand, args[3];

		rc = ulp_proc_maps_read(p->pid, &areas, &nr);
		if (rc < 0)
			return rc;
		cand = ulp_find_free_page(areas, nr, near);
		free(areas);
		if (!cand)
			break;
		args[0] = cand;
		args[1] = ULP_SLOT_PAGE_SIZE;
		args[2] = PROT_READ | PROT_EXEC;
		rc = ulp_runtime_call(t, p, fn_mmap, args, 3, &ret);
		if (rc < 0)
			return rc;
		if (ret == cand) {
			*page = cand;
			return 0;
		}
		if ((int64_t)ret != -EEXIST)
			return ulp_errorf((int)(int64_t)ret,
					  "cannot map a slot page at 0x%llx in process %d: %s",
					  (unsigned long long)cand, p->pid,
					  strerror(-(int)(int64_t)ret));
	}
	return ulp_errorf(-ENOSPC, "no free address within 2 GiB of 0x%llx in process %d",
			  (unsigned long long)near, p->pid);
}

int ulp_slot_alloc(struct ulp_target *t, struct ulp_process *p, uint64_t near, uint64_t *slot)
{
	struct ulp_slot_page *pages;
	uint64_t page = 0;
	int rc;

	for (size_t i = 0; i < t->nr_slot_pages; i++) {
		struct ulp_slot_page *pg = &t->slot_pages[i];

		if (!ulp_in_reach(pg->addr, near))
			continue;
		for (unsigned s = 0; s < ULP_SLOTS_PER_PAGE; s++) {
			if (pg->used & (1u << s))
				continue;
			pg->used |= 1u << s;
			*slot = pg->addr + (uint64_t)s * ULP_SLOT_SIZE;
			return 0;
		}
	}
	rc = ulp_slot_map_page(t, p, near, &page);
	if (rc < 0)
		return rc;
	pages = realloc(t->slot_pages, (t->nr_slot_pages + 1) * sizeof(*pages));
	if (!pages)
		return ulp_errorf(-ENOMEM, "out of memory");
	t->slot_pages = pages;
	pages[t->nr_slot_pages].addr = page;
	pages[t->nr_slot_pages].used = 1;
	t->nr_slot_pages++;
	*slot = page;
	return 0;
}

int ulp_slot_free(struct ulp_target *t, struct ulp_process *p, uint64_t slot)
{
	uint64_t page = slot & ~(uint64_t)(ULP_SLOT_PAGE_SIZE - 1);

	for (size_t i = 0; i < t->nr_slot_pages; i++) {
		struct ulp_slot_page *pg = &t->slot_pages[i];
		uint64_t fn_munmap, args[2] = { page, ULP_SLOT_PAGE_SIZE }, ret;
		int rc;

		if (pg->addr != page)
			continue;
		pg->used &= ~(1u << ((slot - page) / ULP_SLOT_SIZE));
		if (pg->used)
			return 0;
		memmove(pg, pg + 1, (t->nr_slot_pages - i - 1) * sizeof(*pg));
		t->nr_slot_pages--;
		rc = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_munmap),
				      &fn_munmap);
		if (rc == 0)
			rc = ulp_runtime_call(t, p, fn_munmap, args, 2, &ret);
		return rc;
	}
	return 0;
}

bool ulp_slot_contains(const struct ulp_target *t, uint64_t addr)
{
	for (size_t i = 0; i < t->nr_slot_pages; i++)
		if (addr >= t->slot_pages[i].addr &&
		    addr < t->slot_pages[i].addr + ULP_SLOT_PAGE_SIZE)
			return true;
	return false;
}
