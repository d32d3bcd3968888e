/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libpatch/placement.c: the plan that makes the loader map a
 * patch next to the object it patches.  Each plan is checked against a
 * model of the kernel's top-down mmap(NULL): with the planned reservations
 * in place, the highest free gap below mmap_base that fits must be the
 * planned spot, and that spot must be in rel32 reach of the object.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codegen.h"
#include "placement.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define STACK_ROOM (144 * MiB)

static int cmp_area(const void *a, const void *b)
{
	const struct ulp_map_area *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Where mmap(NULL, len) lands in the top-down layout, given maps + reservations. */
static uint64_t model_mmap(const struct ulp_map_area *maps, size_t nr,
			   const struct ulp_placement *pl, uint64_t len, uint64_t mmap_base)
{
	size_t n = nr + pl->nr_reserve;
	struct ulp_map_area *all = calloc(n, sizeof(*all));
	uint64_t hi = mmap_base, found = 0;

	assert_non_null(all);
	memcpy(all, maps, nr * sizeof(*all));
	for (size_t i = 0; i < pl->nr_reserve; i++) {
		all[nr + i].start = pl->reserve[i][0];
		all[nr + i].end = pl->reserve[i][0] + pl->reserve[i][1];
	}
	qsort(all, n, sizeof(*all), cmp_area);
	for (size_t i = n; i-- > 0;) {
		uint64_t gs = all[i].end, ge = i + 1 < n ? all[i + 1].start : hi;

		if (ge > hi)
			ge = hi;
		if (gs < hi && ge > gs && ge - gs >= len) {
			found = ge - len;
			break;
		}
		if (all[i].start < hi)
			hi = all[i].start;
	}
	if (!found && all[0].start >= (1ull << 16) + len)
		found = all[0].start - len;
	free(all);
	return found;
}

static void assert_reservations_sane(const struct ulp_map_area *maps, size_t nr,
				     const struct ulp_placement *pl, uint64_t len)
{
	for (size_t i = 0; i < pl->nr_reserve; i++) {
		uint64_t s = pl->reserve[i][0], e = s + pl->reserve[i][1];

		assert_true(pl->reserve[i][1] >= len);
		assert_true(s >= pl->at + len);
		for (size_t m = 0; m < nr; m++) {
			assert_false(s < maps[m].end && e > maps[m].start);
			/* in the gap under the stack, its room stays free */
			if (maps[m].stack && m && s >= maps[m - 1].end && s < maps[m].start)
				assert_true(e <= maps[m].start - STACK_ROOM);
		}
	}
}

/* Every byte of [at, at + len) within rel32 reach of every byte of [lo, hi). */
static bool in_reach(uint64_t at, uint64_t len, uint64_t lo, uint64_t hi)
{
	if (at + len <= lo)
		return hi - at < ULP_REL32_REACH;
	return at >= hi && at + len - lo < ULP_REL32_REACH;
}

static void check_plan(struct ulp_map_area *maps, size_t nr, uint64_t lo, uint64_t hi, uint64_t len,
		       uint64_t expect_at)
{
	struct ulp_placement pl;
	uint64_t mmap_base = 0;

	/* mmap_base: at least the stack's room under it, and above every library */
	for (size_t m = 0; m < nr; m++) {
		if (maps[m].stack && maps[m].start - STACK_ROOM > mmap_base)
			mmap_base = maps[m].start - STACK_ROOM;
		if (!maps[m].stack && maps[m].end > mmap_base)
			mmap_base = maps[m].end;
	}
	assert_int_equal(ulp_placement_plan(maps, nr, lo, hi, len, STACK_ROOM, ULP_BRK_ROOM, &pl),
			 0);
	if (expect_at)
		assert_int_equal(pl.at, expect_at);
	assert_true(in_reach(pl.at, len, lo, hi));
	assert_reservations_sane(maps, nr, &pl, len);
	assert_int_equal(model_mmap(maps, nr, &pl, len, mmap_base), pl.at);
}

/* A PIE: exe at 0x5555..., heap after it, libraries and their holes near the top. */
static struct ulp_map_area pie[] = {
	{ 0x555555554000, 0x555555559000, false, false }, /* exe */
	{ 0x55555555a000, 0x55555557b000, true, false }, /* [heap] */
	{ 0x7ffff7c00000, 0x7ffff7c80000, false, false }, /* arena */
	{ 0x7ffff7d00000, 0x7ffff7e00000, false, false }, /* a hole of 0x80000 below */
	{ 0x7ffff7e00000, 0x7ffff7fc0000, false, false }, /* libc */
	{ 0x7ffff7fc8000, 0x7ffff7ffe000, false, false }, /* ld.so, a hole of 0x8000 below */
	{ 0x7ffffffde000, 0x7ffffffff000, false, true }, /* [stack] */
};

static void test_pie_lands_right_below_the_executable(void **state)
{
	(void)state;
	check_plan(pie, 7, 0x555555555100, 0x555555555200, 0x5000, 0x555555554000 - 0x5000);
}

static void test_pie_large_patch(void **state)
{
	(void)state;
	/* larger than every hole among the libraries: still right below the exe */
	check_plan(pie, 7, 0x555555555100, 0x555555555200, 0x900000, 0x555555554000 - 0x900000);
}

static void test_small_patch_reserves_small_holes_above(void **state)
{
	struct ulp_placement pl;
	bool hole = false;

	(void)state;
	/* an 8 KiB patch would fit the 0x8000 hole under ld.so: it must be reserved */
	assert_int_equal(ulp_placement_plan(pie, 7, 0x555555555100, 0x555555555200, 0x2000,
					    STACK_ROOM, ULP_BRK_ROOM, &pl),
			 0);
	for (size_t i = 0; i < pl.nr_reserve; i++)
		hole |= pl.reserve[i][0] == 0x7ffff7fc0000 && pl.reserve[i][1] == 0x8000;
	assert_true(hole);
	check_plan(pie, 7, 0x555555555100, 0x555555555200, 0x2000, 0x555555554000 - 0x2000);
}

/* A non-PIE executable at 0x400000: only 4 MiB below it. */
static struct ulp_map_area nopie[] = {
	{ 0x400000, 0x405000, false, false }, /* exe */
	{ 0x406000, 0x427000, true, false }, /* [heap] */
	{ 0x7ffff7e00000, 0x7ffff7fc0000, false, false }, /* libc */
	{ 0x7ffffffde000, 0x7ffffffff000, false, true }, /* [stack] */
};

static void test_nopie_below_when_it_fits(void **state)
{
	(void)state;
	check_plan(nopie, 4, 0x401000, 0x401100, 0x5000, 0x400000 - 0x5000);
}

static void test_nopie_above_heap_room_when_not(void **state)
{
	struct ulp_placement pl;

	(void)state;
	/* 8 MiB does not fit under 0x400000: above the heap, leaving brk its room */
	check_plan(nopie, 4, 0x401000, 0x401100, 8 * MiB, 0);
	assert_int_equal(ulp_placement_plan(nopie, 4, 0x401000, 0x401100, 8 * MiB, STACK_ROOM,
					    ULP_BRK_ROOM, &pl),
			 0);
	assert_true(pl.at >= 0x427000 + ULP_BRK_ROOM);
}

static void test_library_object(void **state)
{
	(void)state;
	/* a function of libc: right under the lowest mapping below it (the arena) */
	check_plan(pie, 7, 0x7ffff7e10000, 0x7ffff7e10100, 0x5000, 0);
}

static void test_nothing_in_reach(void **state)
{
	struct ulp_map_area full[] = {
		{ 0x10000, 0x600000000, false, false },
		{ 0x600000000, 0x600001000, false, false }, /* the object */
		{ 0x600001000, 0xd00000000, false, false },
		{ 0x7ffffffde000, 0x7ffffffff000, false, true },
	};
	struct ulp_placement pl;

	(void)state;
	assert_int_equal(ulp_placement_plan(full, 4, 0x600000100, 0x600000200, 0x5000, STACK_ROOM,
					    ULP_BRK_ROOM, &pl),
			 -ENOSPC);
}

static void test_too_many_gaps(void **state)
{
	size_t n = 2 * ULP_PLACEMENT_MAX_RESERVE + 3;
	struct ulp_map_area *m = calloc(n, sizeof(*m));
	struct ulp_placement pl;

	(void)state;
	assert_non_null(m);
	m[0] = (struct ulp_map_area){ 0x555555554000, 0x555555559000, false, false };
	for (size_t i = 1; i + 1 < n; i++) /* libraries with 1 MiB holes */
		m[i] = (struct ulp_map_area){ 0x7f0000000000 + i * 2 * MiB,
					      0x7f0000000000 + i * 2 * MiB + MiB, false, false };
	m[n - 1] = (struct ulp_map_area){ 0x7ffffffde000, 0x7ffffffff000, false, true };
	assert_int_equal(ulp_placement_plan(m, n, 0x555555555100, 0x555555555200, 0x5000,
					    STACK_ROOM, ULP_BRK_ROOM, &pl),
			 -E2BIG);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pie_lands_right_below_the_executable),
		cmocka_unit_test(test_pie_large_patch),
		cmocka_unit_test(test_small_patch_reserves_small_holes_above),
		cmocka_unit_test(test_nopie_below_when_it_fits),
		cmocka_unit_test(test_nopie_above_heap_room_when_not),
		cmocka_unit_test(test_library_object),
		cmocka_unit_test(test_nothing_in_reach),
		cmocka_unit_test(test_too_many_gaps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
