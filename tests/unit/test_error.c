/* SPDX-License-Identifier: MIT */
/*
 * Error messages (libpatch/error.c): what the user reads when an operation
 * fails.  A best-effort step between the failure and the reply (saving
 * the state in the process, disarming the trap guard) must not replace
 * the failure's message with its own, nor leave its own when there was
 * none.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"

static int best_effort_step(int fail)
{
	struct ulp_error_stash pending;
	int ret = 0;

	ulp_error_stash(&pending);
	if (fail)
		ret = ulp_errorf(-EIO, "the best-effort step's own failure");
	ulp_error_unstash(&pending);
	return ret;
}

static void test_stash_keeps_the_failure(void **state)
{
	(void)state;
	ulp_errorf(-ENOENT, "cannot open fix.so: No such file or directory");
	assert_int_equal(best_effort_step(1), -EIO);
	assert_string_equal(ulp_last_error(), "cannot open fix.so: No such file or directory");
	assert_int_equal(best_effort_step(0), 0);
	assert_string_equal(ulp_last_error(), "cannot open fix.so: No such file or directory");
}

static void test_stash_leaves_no_message_of_its_own(void **state)
{
	(void)state;
	ulp_error_clear();
	assert_int_equal(best_effort_step(1), -EIO);
	assert_string_equal(ulp_last_error(), "");
}

static void test_stash_keeps_a_long_message_whole(void **state)
{
	char longmsg[1000];

	(void)state;
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	ulp_errorf(-EINVAL, "%s", longmsg);
	best_effort_step(1);
	assert_string_equal(ulp_last_error(), longmsg);
}

static void test_prefix(void **state)
{
	(void)state;
	ulp_errorf(-ESRCH, "no such process: 42");
	assert_int_equal(ulp_error_prefix(-ESRCH, "cannot apply 'fix'"), -ESRCH);
	assert_string_equal(ulp_last_error(), "cannot apply 'fix': no such process: 42");
	ulp_error_clear();
	ulp_error_prefix(-ENOENT, "cannot open fix.so");
	assert_string_equal(ulp_last_error(), "cannot open fix.so: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stash_keeps_the_failure),
		cmocka_unit_test(test_stash_leaves_no_message_of_its_own),
		cmocka_unit_test(test_stash_keeps_a_long_message_whole),
		cmocka_unit_test(test_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
