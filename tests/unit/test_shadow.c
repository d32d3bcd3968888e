/* SPDX-License-Identifier: MIT */
/*
 * Shadow variables (runtime/shadow.c), the kernel's klp_shadow_* semantics:
 * the basic API case of the kernel's test_klp_shadow_vars, the refusals
 * (duplicate alloc, failing constructor) with their event-log lines, and
 * many threads asking for the same variable at once.  runtime/shadow.c is
 * compiled into this program; its log lines are captured here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <ulp/patch.h>

static char logged[4096];

/* runtime.c's, replaced: the lines shadow.c adds to the event log */
void ulp_rt_log_line(const char *line)
{
	strncat(logged, line, sizeof(logged) - strlen(logged) - 1);
}

static int ctor_calls, dtor_calls;
static void *dtor_obj[8];
static void *dtor_data[8];

/* Stores ctor_data (a pointer) in the new variable, as the kernel's test does. */
static int ptr_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	(void)obj;
	ctor_calls++;
	memcpy(shadow_data, &ctor_data, sizeof(ctor_data));
	return 0;
}

static int failing_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	(void)obj;
	(void)shadow_data;
	(void)ctor_data;
	return -12;
}

static void record_dtor(void *obj, void *shadow_data)
{
	if (dtor_calls < 8) {
		dtor_obj[dtor_calls] = obj;
		dtor_data[dtor_calls] = shadow_data;
	}
	dtor_calls++;
}

static void *stored(void *shadow)
{
	void *p;

	memcpy(&p, shadow, sizeof(p));
	return p;
}

static void test_basic_api(void **state)
{
	int obj1, obj2, var1, var2, var3;
	void *sv1, *sv2, *sv3, *sv4;

	(void)state;
	ctor_calls = dtor_calls = 0;
	assert_null(ulp_shadow_get(&obj1, 0x1234));

	sv1 = ulp_shadow_alloc(&obj1, 0x1234, sizeof(void *), ptr_ctor, &var1);
	sv2 = ulp_shadow_alloc(&obj2, 0x1234, sizeof(void *), ptr_ctor, &var2);
	sv3 = ulp_shadow_alloc(&obj1, 0x1235, sizeof(void *), ptr_ctor, &var3);
	assert_non_null(sv1);
	assert_non_null(sv2);
	assert_non_null(sv3);
	assert_int_equal(ctor_calls, 3);
	assert_ptr_equal(stored(sv1), &var1);
	assert_ptr_equal(stored(sv2), &var2);
	assert_ptr_equal(stored(sv3), &var3);
	assert_true(((uintptr_t)sv1 % _Alignof(max_align_t)) == 0);

	/* each <obj, id> its own */
	assert_ptr_equal(ulp_shadow_get(&obj1, 0x1234), sv1);
	assert_ptr_equal(ulp_shadow_get(&obj2, 0x1234), sv2);
	assert_ptr_equal(ulp_shadow_get(&obj1, 0x1235), sv3);

	/* get_or_alloc: the existing one, no constructor */
	sv4 = ulp_shadow_get_or_alloc(&obj2, 0x1234, sizeof(void *), ptr_ctor, &var3);
	assert_ptr_equal(sv4, sv2);
	assert_int_equal(ctor_calls, 3);

	/* free: the destructor sees the object and its data; gone afterwards */
	ulp_shadow_free(&obj1, 0x1234, record_dtor);
	assert_int_equal(dtor_calls, 1);
	assert_ptr_equal(dtor_obj[0], &obj1);
	assert_ptr_equal(dtor_data[0], sv1);
	assert_null(ulp_shadow_get(&obj1, 0x1234));
	assert_ptr_equal(ulp_shadow_get(&obj1, 0x1235), sv3);

	/* free_all: every variable of that id, no other */
	ulp_shadow_free_all(0x1234, record_dtor);
	assert_int_equal(dtor_calls, 2);
	assert_ptr_equal(dtor_obj[1], &obj2);
	assert_null(ulp_shadow_get(&obj2, 0x1234));
	assert_ptr_equal(ulp_shadow_get(&obj1, 0x1235), sv3);
	ulp_shadow_free_all(0x1235, NULL);
	assert_null(ulp_shadow_get(&obj1, 0x1235));
	assert_int_equal(dtor_calls, 2);

	/* freeing what does not exist is harmless */
	ulp_shadow_free(&obj1, 0x1234, record_dtor);
	assert_int_equal(dtor_calls, 2);
}

static void test_refusals(void **state)
{
	int obj;
	char want[160];
	void *sv;

	(void)state;
	logged[0] = '\0';
	sv = ulp_shadow_alloc(&obj, 7, 16, NULL, NULL);
	assert_non_null(sv);
	for (int i = 0; i < 16; i++)
		assert_int_equal(((unsigned char *)sv)[i], 0);
	/* a second alloc of the same <obj, id> is refused and logged */
	assert_null(ulp_shadow_alloc(&obj, 7, 16, NULL, NULL));
	snprintf(want, sizeof(want), "ulp: Duplicate shadow variable <%p, 7>\n", (void *)&obj);
	assert_string_equal(logged, want);
	assert_ptr_equal(ulp_shadow_get(&obj, 7), sv);
	ulp_shadow_free(&obj, 7, NULL);

	/* a failing constructor: nothing is attached, and the log says why */
	logged[0] = '\0';
	assert_null(ulp_shadow_alloc(&obj, 8, 16, failing_ctor, NULL));
	assert_null(ulp_shadow_get_or_alloc(&obj, 8, 16, failing_ctor, NULL));
	assert_null(ulp_shadow_get(&obj, 8));
	snprintf(want, sizeof(want),
		 "ulp: Failed to construct shadow variable <%p, 8> (-12)\n"
		 "ulp: Failed to construct shadow variable <%p, 8> (-12)\n",
		 (void *)&obj, (void *)&obj);
	assert_string_equal(logged, want);
}

#define NR_THREADS 16
#define NR_OBJS 64

static int shared_objs[NR_OBJS];
static void *seen[NR_THREADS][NR_OBJS];
static int racing_ctor_calls;

static int counting_ctor(void *obj, void *shadow_data, void *ctor_data)
{
	(void)shadow_data;
	(void)ctor_data;
	__atomic_fetch_add(&racing_ctor_calls, 1, __ATOMIC_RELAXED);
	*(void **)shadow_data = obj;
	return 0;
}

static void *racer(void *arg)
{
	void **mine = arg;

	for (int round = 0; round < 200; round++)
		for (int i = 0; i < NR_OBJS; i++)
			mine[i] = ulp_shadow_get_or_alloc(&shared_objs[i], 99, sizeof(void *),
							  counting_ctor, NULL);
	return NULL;
}

/* Many threads, one variable per object: one constructor call, one pointer. */
static void test_many_threads(void **state)
{
	pthread_t t[NR_THREADS];

	(void)state;
	for (int i = 0; i < NR_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, racer, seen[i]), 0);
	for (int i = 0; i < NR_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(racing_ctor_calls, NR_OBJS);
	for (int i = 0; i < NR_OBJS; i++) {
		assert_non_null(seen[0][i]);
		assert_ptr_equal(*(void **)seen[0][i], &shared_objs[i]);
		for (int k = 1; k < NR_THREADS; k++)
			assert_ptr_equal(seen[k][i], seen[0][i]);
	}
	ulp_shadow_free_all(99, NULL);
	for (int i = 0; i < NR_OBJS; i++)
		assert_null(ulp_shadow_get(&shared_objs[i], 99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_api),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_many_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
