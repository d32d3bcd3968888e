/* SPDX-License-Identifier: MIT */
/*
 * The no-op entries of an atomic replace (libpatch/replace.c), as the
 * kernel's klp_add_nops(): every function an installed patch changed and
 * the cumulative patch does not, once, by object, name and sympos.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "replace.h"

#define FUNCS(var, ...) struct ulp_patch_func_info var[] = { __VA_ARGS__ }
#define NR(a) (sizeof(a) / sizeof((a)[0]))

static const struct ulp_patch_object_info *find_obj(const struct ulp_patch_object_info *objs,
						    size_t nr, const char *name)
{
	for (size_t i = 0; i < nr; i++)
		if ((!name && !objs[i].name) ||
		    (name && objs[i].name && !strcmp(name, objs[i].name)))
			return &objs[i];
	return NULL;
}

static bool has_func(const struct ulp_patch_object_info *o, const char *name, unsigned long pos)
{
	for (size_t i = 0; o && i < o->nr_funcs; i++)
		if (!strcmp(o->funcs[i].old_name, name) && o->funcs[i].old_sympos == pos)
			return true;
	return false;
}

static void test_nops(void **state)
{
	FUNCS(a_main, { .old_name = "f" }, { .old_name = "g" },
	      { .old_name = "s", .old_sympos = 1 });
	FUNCS(a_lib, { .old_name = "lf" });
	FUNCS(b_main, { .old_name = "g" }, { .old_name = "h" },
	      { .old_name = "s", .old_sympos = 2 });
	struct ulp_patch_object_info a_objs[] = {
		{ .name = NULL, .funcs = a_main, .nr_funcs = NR(a_main) },
		{ .name = "libx.so.1", .funcs = a_lib, .nr_funcs = NR(a_lib) },
	};
	struct ulp_patch_object_info b_objs[] = {
		{ .name = NULL, .funcs = b_main, .nr_funcs = NR(b_main) },
	};
	struct ulp_patch_info a = { .name = "a", .objs = a_objs, .nr_objs = NR(a_objs) };
	struct ulp_patch_info b = { .name = "b", .objs = b_objs, .nr_objs = NR(b_objs) };
	struct ulp_applied_patch ap_a = { .info = &a }, ap_b = { .info = &b };
	struct ulp_applied_patch *installed[] = { &ap_a, &ap_b };
	struct ulp_target t = { .patches = installed, .nr_patches = 2 };
	/* the cumulative patch keeps f and s (sympos 2), drops the rest */
	FUNCS(r_main, { .old_name = "f" }, { .old_name = "s", .old_sympos = 2 });
	struct ulp_patch_object_info r_objs[] = {
		{ .name = NULL, .funcs = r_main, .nr_funcs = NR(r_main) }
	};
	struct ulp_patch_info r = { .name = "r", .replace = true, .objs = r_objs, .nr_objs = 1 };
	struct ulp_patch_object_info *nops;
	const struct ulp_patch_object_info *m, *lib;
	size_t nr;

	(void)state;
	assert_int_equal(ulp_replace_nops(&t, &r, &nops, &nr), 0);
	assert_int_equal(nr, 2);
	m = find_obj(nops, nr, NULL);
	lib = find_obj(nops, nr, "libx.so.1");
	assert_non_null(m);
	assert_non_null(lib);
	/* g once although both patched it; s of the other sympos; h */
	assert_int_equal(m->nr_funcs, 3);
	assert_true(has_func(m, "g", 0));
	assert_true(has_func(m, "s", 1));
	assert_true(has_func(m, "h", 0));
	assert_false(has_func(m, "f", 0));
	assert_false(has_func(m, "s", 2));
	/* an object the cumulative patch does not name at all */
	assert_int_equal(lib->nr_funcs, 1);
	assert_true(has_func(lib, "lf", 0));
	/* no callbacks: a no-op object's callbacks never run */
	assert_int_equal(m->pre_patch | m->post_patch | m->pre_unpatch | m->post_unpatch, 0);
	ulp_nop_infos_free(nops, nr);
}

/* Nothing installed, or everything kept: no no-ops. */
static void test_no_nops(void **state)
{
	FUNCS(a_main, { .old_name = "f" });
	struct ulp_patch_object_info a_objs[] = {
		{ .name = NULL, .funcs = a_main, .nr_funcs = 1 }
	};
	struct ulp_patch_info a = { .name = "a", .objs = a_objs, .nr_objs = 1 };
	struct ulp_patch_info r = { .name = "r", .replace = true, .objs = a_objs, .nr_objs = 1 };
	struct ulp_applied_patch ap_a = { .info = &a };
	struct ulp_applied_patch *installed[] = { &ap_a };
	struct ulp_target none = { 0 }, one = { .patches = installed, .nr_patches = 1 };
	struct ulp_patch_object_info *nops;
	size_t nr;

	(void)state;
	assert_int_equal(ulp_replace_nops(&none, &r, &nops, &nr), 0);
	assert_int_equal(nr, 0);
	ulp_nop_infos_free(nops, nr);
	assert_int_equal(ulp_replace_nops(&one, &r, &nops, &nr), 0);
	assert_int_equal(nr, 0);
	ulp_nop_infos_free(nops, nr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nops),
		cmocka_unit_test(test_no_nops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
