/* SPDX-License-Identifier: MIT */
/*
 * Who may patch a process (libpatch/ptrace_access.c): the kernel's ptrace
 * access rule for a caller without CAP_SYS_PTRACE (same uid as the
 * target's real, effective and saved uids, same gid as its three gids,
 * dumpable target), root allowed, and Yama's ptrace_scope on top.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "error.h"
#include "ptrace_access.h"

#define USER 1001
#define GROUP 1002
#define OTHER 1003

/* A dumpable process of USER:GROUP, not a descendant of the caller. */
static struct ulp_ptrace_target own(void)
{
	return (struct ulp_ptrace_target){
		.pid = 4242,
		.tgid = 4242,
		.uid = { USER, USER, USER },
		.gid = { GROUP, GROUP, GROUP },
		.proc_uid = USER,
		.proc_gid = GROUP,
	};
}

static const struct ulp_ptrace_caller user = { .pid = 100, .uid = USER, .gid = GROUP };
static const struct ulp_ptrace_caller root = { .pid = 101, .uid = 0, .gid = 0 };

static void test_same_ids_dumpable(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_ALLOWED);
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_CLASSIC), 0);
}

/* Each of the three uids counts: a set-user-ID program, or one that swapped ids. */
static void test_every_uid(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct ulp_ptrace_target t = own();

		t.uid[i] = OTHER;
		if (i == 1)
			t.proc_uid = OTHER; /* the files follow the effective uid */
		assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC),
				 ULP_PTRACE_OTHER_UID);
		ulp_error_clear();
		assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_CLASSIC), -EPERM);
		assert_non_null(strstr(ulp_last_error(),
				       "process 4242 runs with real/effective/saved uids"));
		assert_non_null(strstr(ulp_last_error(), "uid 1001"));
	}
}

static void test_every_gid(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		struct ulp_ptrace_target t = own();

		t.gid[i] = OTHER;
		if (i == 1)
			t.proc_gid = OTHER;
		assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC),
				 ULP_PTRACE_OTHER_GID);
		assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_CLASSIC), -EPERM);
		assert_non_null(strstr(ulp_last_error(), "real/effective/saved gids"));
	}
}

/* Another user's process: the message names the process, its owner and the caller. */
static void test_other_user(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	for (int i = 0; i < 3; i++)
		t.uid[i] = 0;
	t.proc_uid = 0;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_OTHER_UID);
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_CLASSIC), -EPERM);
	/* uid 0 is "root" in any passwd; 1001 may or may not have a name */
	assert_non_null(
		strstr(ulp_last_error(),
		       "permission denied: process 4242 belongs to uid 0 (root), not to uid 1001"));
}

/* The uid is checked before the gid, as in the kernel (the message says the first reason). */
static void test_uid_before_gid(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	t.uid[0] = OTHER;
	t.gid[0] = OTHER;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_OTHER_UID);
}

static void test_other_group(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	for (int i = 0; i < 3; i++)
		t.gid[i] = 0;
	t.proc_gid = 0;
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_CLASSIC), -EPERM);
	assert_non_null(strstr(ulp_last_error(), "process 4242 runs with gid 0"));
	assert_non_null(strstr(ulp_last_error(), "not with gid 1002"));
}

/* Not dumpable: its /proc files belong to root (or to its namespace's root). */
static void test_not_dumpable(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	t.proc_uid = 0;
	t.proc_gid = 0;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_NOT_DUMPABLE);
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_CLASSIC), -EPERM);
	assert_non_null(strstr(ulp_last_error(), "process 4242 is not dumpable"));
	/* a container's root as owner, or only the group switched: not dumpable either */
	t.proc_uid = 100000;
	t.proc_gid = 100000;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_NOT_DUMPABLE);
	t.proc_uid = USER;
	t.proc_gid = 0;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_NOT_DUMPABLE);
	/* the uid rule comes first */
	t = own();
	t.proc_uid = 0;
	t.uid[2] = OTHER;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_OTHER_UID);
}

/* Root may patch anything, whatever its ids, dumpable or not, whatever Yama says. */
static void test_root(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	t.uid[1] = OTHER;
	t.gid[2] = OTHER;
	t.proc_uid = 0;
	t.proc_gid = 0;
	for (int scope = 0; scope <= 3; scope++)
		assert_int_equal(ulp_ptrace_judge(&root, &t, scope), ULP_PTRACE_ALLOWED);
	assert_int_equal(ulp_ptrace_may_access(&root, &t, ULP_YAMA_ADMIN), 0);
}

/* A process may patch itself (the kernel's same_thread_group), through any of its tids. */
static void test_self(void **state)
{
	struct ulp_ptrace_target t = own();
	struct ulp_ptrace_caller self = { .pid = 4242, .uid = OTHER, .gid = OTHER };

	(void)state;
	t.pid = 4243; /* a thread of it */
	t.proc_uid = 0;
	assert_int_equal(ulp_ptrace_judge(&self, &t, ULP_YAMA_ADMIN), ULP_PTRACE_ALLOWED);
	/* an unknown caller pid (0) is nobody's thread group */
	self.pid = 0;
	t.tgid = 0;
	assert_int_equal(ulp_ptrace_judge(&self, &t, ULP_YAMA_CLASSIC), ULP_PTRACE_OTHER_UID);
}

static void test_yama(void **state)
{
	struct ulp_ptrace_target t = own();

	(void)state;
	/* 1: descendants only */
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_RELATIONAL),
			 ULP_PTRACE_NOT_DESCENDANT);
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_RELATIONAL), -EPERM);
	assert_non_null(strstr(ulp_last_error(),
			       "process 4242 is not a descendant of the caller (process 100)"));
	assert_non_null(strstr(ulp_last_error(), "ptrace_scope is 1"));
	t.descends_from_caller = true;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_RELATIONAL), ULP_PTRACE_ALLOWED);
	/* ...and the classic rules still hold for a descendant */
	t.proc_uid = 0;
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_RELATIONAL), ULP_PTRACE_NOT_DUMPABLE);
	t = own();
	t.descends_from_caller = true;
	/* 2: root only, descendant or not */
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_ADMIN), ULP_PTRACE_ADMIN_ONLY);
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_ADMIN), -EPERM);
	assert_non_null(
		strstr(ulp_last_error(), "ptrace_scope is 2: only root may patch process 4242"));
	/* 3, and values beyond: nobody */
	assert_int_equal(ulp_ptrace_judge(&user, &t, ULP_YAMA_NO_ATTACH), ULP_PTRACE_NO_ATTACH);
	assert_int_equal(ulp_ptrace_judge(&user, &t, 7), ULP_PTRACE_NO_ATTACH);
	assert_int_equal(ulp_ptrace_may_access(&user, &t, ULP_YAMA_NO_ATTACH), -EPERM);
	assert_non_null(strstr(ulp_last_error(), "ptrace_scope is 3"));
}

static const char status_text[] = "Name:\tcat\n"
				  "Umask:\t0022\n"
				  "State:\tR (running)\n"
				  "Tgid:\t4242\n"
				  "Ngid:\t0\n"
				  "Pid:\t4243\n"
				  "PPid:\t1\n"
				  "TracerPid:\t0\n"
				  "Uid:\t1001\t1003\t1001\t1003\n"
				  "Gid:\t1002\t1002\t4294967294\t1002\n"
				  "FDSize:\t256\n"
				  "Groups:\t1002 27\n";

static void test_parse_status(void **state)
{
	struct ulp_ptrace_target t = { .pid = 4243 };

	(void)state;
	assert_int_equal(ulp_ptrace_parse_status(status_text, &t), 0);
	assert_int_equal(t.tgid, 4242);
	assert_int_equal(t.uid[0], 1001);
	assert_int_equal(t.uid[1], 1003);
	assert_int_equal(t.uid[2], 1001);
	assert_int_equal(t.gid[0], 1002);
	assert_int_equal(t.gid[1], 1002);
	assert_int_equal(t.gid[2], 4294967294u);
}

static void test_parse_status_bad(void **state)
{
	struct ulp_ptrace_target t = { .pid = 7 };

	(void)state;
	assert_int_equal(ulp_ptrace_parse_status("", &t), -EINVAL);
	assert_int_equal(ulp_ptrace_parse_status("Tgid:\t7\nUid:\t1\t1\t1\t1\n", &t), -EINVAL);
	assert_non_null(strstr(ulp_last_error(), "/proc/7/status"));
	assert_int_equal(ulp_ptrace_parse_status("Tgid:\t7\nUid:\t1\t1\nGid:\t1\t1\t1\t1\n", &t),
			 -EINVAL);
	assert_int_equal(ulp_ptrace_parse_status("Tgid:\t7\nUid:\t1\t1\t99999999999\t1\n"
						 "Gid:\t1\t1\t1\t1\n",
						 &t),
			 -EINVAL);
	assert_int_equal(
		ulp_ptrace_parse_status("Tgid:\tx\nUid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\n", &t),
		-EINVAL);
	/* "Uid:" must start a line: a key inside another line is not it */
	assert_int_equal(ulp_ptrace_parse_status("Name:\tUid:\t0\t0\t0\t0\nTgid:\t7\n"
						 "Gid:\t1\t1\t1\t1\n",
						 &t),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_ids_dumpable),
		cmocka_unit_test(test_every_uid),
		cmocka_unit_test(test_every_gid),
		cmocka_unit_test(test_other_user),
		cmocka_unit_test(test_uid_before_gid),
		cmocka_unit_test(test_other_group),
		cmocka_unit_test(test_not_dumpable),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_yama),
		cmocka_unit_test(test_parse_status),
		cmocka_unit_test(test_parse_status_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
