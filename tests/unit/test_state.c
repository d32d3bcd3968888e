/* SPDX-License-Identifier: MIT */
/*
 * The version rules of system states (libpatch/state.c), as the kernel's
 * klp_is_patch_compatible() and seed 002 state them: a new state is always
 * fine; a state already modified needs the same or a higher version; a
 * cumulative (replace) patch must handle every state already modified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "state.h"

#define PATCH(var, rep, ...)                                                                       \
	struct ulp_patch_state_info var##_states[] = { __VA_ARGS__ };                              \
	struct ulp_patch_info var = {                                                              \
		.name = #var,                                                                      \
		.replace = (rep),                                                                  \
		.states = var##_states,                                                            \
		.nr_states = sizeof(var##_states) / sizeof(var##_states[0]),                       \
	}

static void test_rules(void **state)
{
	PATCH(installed_v2, false, { .id = 1, .version = 2 }, { .id = 7, .version = 1 });
	PATCH(lower, false, { .id = 1, .version = 1 });
	PATCH(same, false, { .id = 1, .version = 2 });
	PATCH(higher, false, { .id = 1, .version = 3 });
	PATCH(other_state, false, { .id = 5, .version = 1 });
	PATCH(cumulative_all, true, { .id = 1, .version = 2 }, { .id = 7, .version = 1 });
	PATCH(cumulative_missing, true, { .id = 1, .version = 2 });
	PATCH(cumulative_lower, true, { .id = 1, .version = 2 }, { .id = 7, .version = 0 });
	struct ulp_patch_info none = { .name = "none" };
	const struct ulp_patch_info *installed[] = { &installed_v2 };

	(void)state;
	/* nothing installed: anything goes */
	assert_true(ulp_patch_states_compatible(&lower, NULL, 0));
	assert_true(ulp_patch_states_compatible(&cumulative_missing, NULL, 0));

	assert_false(ulp_patch_states_compatible(&lower, installed, 1));
	assert_true(ulp_patch_states_compatible(&same, installed, 1));
	assert_true(ulp_patch_states_compatible(&higher, installed, 1));
	/* a new state, or none at all: a non-cumulative patch leaves the others alone */
	assert_true(ulp_patch_states_compatible(&other_state, installed, 1));
	assert_true(ulp_patch_states_compatible(&none, installed, 1));

	assert_true(ulp_patch_states_compatible(&cumulative_all, installed, 1));
	assert_false(ulp_patch_states_compatible(&cumulative_missing, installed, 1));
	assert_false(ulp_patch_states_compatible(&cumulative_lower, installed, 1));
}

/* Every installed patch counts, not only the newest. */
static void test_all_installed(void **state)
{
	PATCH(first, false, { .id = 1, .version = 4 });
	PATCH(second, false, { .id = 2, .version = 1 });
	PATCH(new_ok, false, { .id = 1, .version = 4 }, { .id = 2, .version = 1 });
	PATCH(new_low, false, { .id = 1, .version = 3 });
	const struct ulp_patch_info *installed[] = { &first, &second };

	(void)state;
	assert_true(ulp_patch_states_compatible(&new_ok, installed, 2));
	assert_false(ulp_patch_states_compatible(&new_low, installed, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_all_installed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
