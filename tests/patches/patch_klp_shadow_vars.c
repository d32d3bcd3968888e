// SPDX-License-Identifier: MIT
/*
 * patch_klp_shadow_vars.so - "test_klp_shadow_vars": the kernel selftest
 * module test_klp_shadow_vars.ko for ulp (integration.klp_shadow_vars).
 * The kernel module runs its sequence from module_init; a ulp patch runs
 * code in the target from its callbacks, so pre_patch runs it: the same
 * ulp_shadow_* calls on the same objects in the same order, each logged
 * with ulp_log() in the kernel's words ("klp_shadow_*" -> "ulp_shadow_*";
 * ulp has no gfp_flags, so that argument is left out of the lines).
 *
 * Pointers are logged as PTRn, n numbering the distinct pointers in the
 * order they are first seen (NULL is PTR0), so the event log is the same on
 * every run; the numbering starts afresh at each pre_patch.  A failed
 * expectation makes pre_patch refuse the patch (-ENOMEM / -EINVAL, as the
 * kernel module's init fails), after freeing what it allocated.
 *
 * The object "main" has no functions: the patch exists for its callback.
 */
#include <errno.h>
#include <stddef.h>
#include <ulp/patch.h>

/*
 * A fixed table, not shadow variables (the code under test) nor malloc:
 * the constructor and destructor log pointers while the runtime holds its
 * shadow variables' lock.
 */
#define MAX_PTRS 32

static const void *ptrs[MAX_PTRS];
static int nr_ptrs;

static int ptr_id(const void *ptr)
{
	for (int i = 0; i < nr_ptrs; i++)
		if (ptrs[i] == ptr)
			return i;
	if (nr_ptrs == MAX_PTRS)
		return -ENOMEM;
	ptrs[nr_ptrs] = ptr;
	return nr_ptrs++;
}

/* Function pointers through a data pointer: only their identity is logged. */
#define FN_ID(fn) ptr_id((const void *)(size_t)(fn))

static void *shadow_get(void *obj, unsigned long id)
{
	void *sv = ulp_shadow_get(obj, id);

	ulp_log("ulp_%s(obj=PTR%d, id=0x%lx) = PTR%d", __func__, ptr_id(obj), id, ptr_id(sv));
	return sv;
}

static void *shadow_alloc(void *obj, unsigned long id, size_t size, ulp_shadow_ctor_t ctor,
			  void *ctor_data)
{
	int **var = ctor_data;
	void *sv = ulp_shadow_alloc(obj, id, size, ctor, ctor_data);

	ulp_log("ulp_%s(obj=PTR%d, id=0x%lx, size=%zx), ctor=PTR%d, ctor_data=PTR%d = PTR%d",
		__func__, ptr_id(obj), id, size, FN_ID(ctor), ptr_id(*var), ptr_id(sv));
	return sv;
}

static void *shadow_get_or_alloc(void *obj, unsigned long id, size_t size, ulp_shadow_ctor_t ctor,
				 void *ctor_data)
{
	int **var = ctor_data;
	void *sv = ulp_shadow_get_or_alloc(obj, id, size, ctor, ctor_data);

	ulp_log("ulp_%s(obj=PTR%d, id=0x%lx, size=%zx), ctor=PTR%d, ctor_data=PTR%d = PTR%d",
		__func__, ptr_id(obj), id, size, FN_ID(ctor), ptr_id(*var), ptr_id(sv));
	return sv;
}

static void shadow_free(void *obj, unsigned long id, ulp_shadow_dtor_t dtor)
{
	ulp_shadow_free(obj, id, dtor);
	ulp_log("ulp_%s(obj=PTR%d, id=0x%lx, dtor=PTR%d)", __func__, ptr_id(obj), id, FN_ID(dtor));
}

static void shadow_free_all(unsigned long id, ulp_shadow_dtor_t dtor)
{
	ulp_shadow_free_all(id, dtor);
	ulp_log("ulp_%s(id=0x%lx, dtor=PTR%d)", __func__, id, FN_ID(dtor));
}

/* The shadow variable is a pointer: the constructor stores *ctor_data in it. */
static int shadow_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	int **sv = shadow_data;
	int **var = ctor_data;

	(void)obj;
	if (!var)
		return -EINVAL;
	*sv = *var;
	ulp_log("%s: PTR%d -> PTR%d", __func__, ptr_id(sv), ptr_id(*var));
	return 0;
}

/*
 * Only given to ulp_shadow_free(): ulp_shadow_free_all() over several
 * variables calls it in no particular order, and the log must be stable.
 */
static void shadow_dtor(void *obj, void *shadow_data)
{
	ulp_log("%s(obj=PTR%d, shadow_data=PTR%d)", __func__, ptr_id(obj), ptr_id(shadow_data));
}

#define NUM_OBJS 3

/* Fields added to the objects at run time, as shadow variables. */
#define SV_ID1 0x1234 /* a char */
#define SV_ID2 0x1235 /* an int */

/* Stands for a structure that a fix needs to extend (never empty: distinct addresses). */
struct test_object {
	int existing_field;
};

static int shadow_vars_test(void)
{
	struct test_object objs[NUM_OBJS];
	char nfields1[NUM_OBJS], *pnfields1[NUM_OBJS], **sv1[NUM_OBJS];
	char *pndup[NUM_OBJS];
	int nfields2[NUM_OBJS], *pnfields2[NUM_OBJS], **sv2[NUM_OBJS];
	void **sv;
	int ret;
	int i;

	nr_ptrs = 0;
	ptr_id(NULL);

	/* Nothing allocated yet: nothing found. */
	sv = shadow_get(&objs[0], SV_ID1);
	if (!sv)
		ulp_log("  got expected NULL result");

	/* pass 1: a char and an int field for each object (both allocation calls) */
	for (i = 0; i < NUM_OBJS; i++) {
		pnfields1[i] = &nfields1[i];
		ptr_id(pnfields1[i]);
		if (i % 2)
			sv1[i] = shadow_alloc(&objs[i], SV_ID1, sizeof(pnfields1[i]), shadow_ctor,
					      &pnfields1[i]);
		else
			sv1[i] = shadow_get_or_alloc(&objs[i], SV_ID1, sizeof(pnfields1[i]),
						     shadow_ctor, &pnfields1[i]);
		if (!sv1[i]) {
			ret = -ENOMEM;
			goto out;
		}

		pnfields2[i] = &nfields2[i];
		ptr_id(pnfields2[i]);
		sv2[i] = shadow_alloc(&objs[i], SV_ID2, sizeof(pnfields2[i]), shadow_ctor,
				      &pnfields2[i]);
		if (!sv2[i]) {
			ret = -ENOMEM;
			goto out;
		}
	}

	/* pass 2: each field is found, and holds what the constructor stored */
	for (i = 0; i < NUM_OBJS; i++) {
		sv = shadow_get(&objs[i], SV_ID1);
		if (!sv) {
			ret = -EINVAL;
			goto out;
		}
		if ((char **)sv == sv1[i] && *sv1[i] == pnfields1[i])
			ulp_log("  got expected PTR%d -> PTR%d result", ptr_id(sv1[i]),
				ptr_id(*sv1[i]));

		sv = shadow_get(&objs[i], SV_ID2);
		if (!sv) {
			ret = -EINVAL;
			goto out;
		}
		if ((int **)sv == sv2[i] && *sv2[i] == pnfields2[i])
			ulp_log("  got expected PTR%d -> PTR%d result", ptr_id(sv2[i]),
				ptr_id(*sv2[i]));
	}

	/* pass 3: get_or_alloc returns the existing field, its constructor unused */
	for (i = 0; i < NUM_OBJS; i++) {
		pndup[i] = &nfields1[i];
		ptr_id(pndup[i]);
		sv = shadow_get_or_alloc(&objs[i], SV_ID1, sizeof(pndup[i]), shadow_ctor,
					 &pndup[i]);
		if (!sv) {
			ret = -EINVAL;
			goto out;
		}
		if ((char **)sv == sv1[i] && *sv1[i] == pnfields1[i])
			ulp_log("  got expected PTR%d -> PTR%d result", ptr_id(sv1[i]),
				ptr_id(*sv1[i]));
	}

	/* pass 4: free the char fields one by one; gone */
	for (i = 0; i < NUM_OBJS; i++) {
		shadow_free(&objs[i], SV_ID1, shadow_dtor);
		sv = shadow_get(&objs[i], SV_ID1);
		if (!sv)
			ulp_log("  got expected NULL result");
	}

	/* pass 5: the int fields are still there */
	for (i = 0; i < NUM_OBJS; i++) {
		sv = shadow_get(&objs[i], SV_ID2);
		if (!sv) {
			ret = -EINVAL;
			goto out;
		}
		if ((int **)sv == sv2[i] && *sv2[i] == pnfields2[i])
			ulp_log("  got expected PTR%d -> PTR%d result", ptr_id(sv2[i]),
				ptr_id(*sv2[i]));
	}

	/* pass 6: free all the int fields at once; gone */
	shadow_free_all(SV_ID2, NULL);
	for (i = 0; i < NUM_OBJS; i++) {
		sv = shadow_get(&objs[i], SV_ID2);
		if (!sv)
			ulp_log("  got expected NULL result");
	}
	return 0;

out:
	shadow_free_all(SV_ID1, NULL);
	shadow_free_all(SV_ID2, NULL);
	return ret;
}

static int pre_patch_callback(struct ulp_object *obj)
{
	(void)obj;
	return shadow_vars_test();
}

static struct ulp_func no_funcs[] = { {} };

static struct ulp_object objs[] = {
	{ .name = NULL, .funcs = no_funcs, .callbacks = { .pre_patch = pre_patch_callback } }, {}
};

ULP_PATCH("test_klp_shadow_vars", .objs = objs);
