/* SPDX-License-Identifier: MIT */
/*
 * The ELF cache (libpatch/elf_cache.c): the symbols of every process of a
 * program come from one parse of each file, and only ever from the very
 * file a process maps, identified by the device and inode /proc/PID/maps
 * shows.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "elf_cache.h"
#include "process.h"

#include <fcntl.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* This test program's own file, as its maps would name it. */
static int open_self(struct ulp_file_id *id)
{
	struct stat st;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	id->dev_major = major(st.st_dev);
	id->dev_minor = minor(st.st_dev);
	id->ino = st.st_ino;
	return fd;
}

static int setup(void **state)
{
	(void)state;
	elf_version(EV_CURRENT);
	ulp_elf_cache_flush();
	return 0;
}

static void test_one_parse_for_every_user(void **state)
{
	struct ulp_file_id id;
	Elf *first, *again;
	int fd = open_self(&id);

	(void)state;
	assert_null(ulp_elf_cache_get(&id));
	assert_int_equal(ulp_elf_cache_add(&id, fd, &first), 0);
	close(fd); /* the entry needs no descriptor */
	assert_non_null(first);
	again = ulp_elf_cache_get(&id);
	/* the same parsed file, not a second one */
	assert_ptr_equal(again, first);
	assert_int_equal(elf_kind(again), ELF_K_ELF);
	elf_end(first);
	elf_end(again);
	/* the cache's own reference keeps it */
	again = ulp_elf_cache_get(&id);
	assert_non_null(again);
	assert_non_null(elf_getident(again, NULL));
	elf_end(again);
}

static void test_another_file_is_refused(void **state)
{
	struct ulp_file_id id, other;
	Elf *elf = (Elf *)1;
	int fd = open_self(&id);

	(void)state;
	/* a file at the mapped path that is not the mapped inode */
	other = id;
	other.ino++;
	assert_int_equal(ulp_elf_cache_add(&other, fd, &elf), -ESTALE);
	assert_null(elf);
	assert_null(ulp_elf_cache_get(&other));
	other = id;
	other.dev_minor++;
	assert_int_equal(ulp_elf_cache_add(&other, fd, &elf), -ESTALE);
	assert_null(ulp_elf_cache_get(&other));
	close(fd);
}

static void test_not_elf(void **state)
{
	struct ulp_file_id id;
	struct stat st;
	Elf *elf = (Elf *)1;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	id.dev_major = major(st.st_dev);
	id.dev_minor = minor(st.st_dev);
	id.ino = st.st_ino;
	assert_int_equal(ulp_elf_cache_add(&id, fd, &elf), -ENOEXEC);
	assert_null(elf);
	assert_null(ulp_elf_cache_get(&id));
	close(fd);
}

static void test_flush(void **state)
{
	struct ulp_file_id id;
	Elf *elf;
	int fd = open_self(&id);

	(void)state;
	assert_int_equal(ulp_elf_cache_add(&id, fd, &elf), 0);
	close(fd);
	ulp_elf_cache_flush();
	assert_null(ulp_elf_cache_get(&id));
	/* a reference taken before the flush is still good */
	assert_int_equal(elf_kind(elf), ELF_K_ELF);
	elf_end(elf);
}

/* An entry unused for 30 s goes at the next expiry, not before; a used one stays. */
static void test_expire(void **state)
{
	struct ulp_file_id id;
	Elf *elf;
	int fd = open_self(&id);
	uint64_t added;

	(void)state;
	added = ulp_now_us();
	assert_int_equal(ulp_elf_cache_add(&id, fd, &elf), 0);
	close(fd);
	elf_end(elf);
	ulp_elf_cache_expire(added + 29 * 1000000ull);
	elf = ulp_elf_cache_get(&id);
	assert_non_null(elf);
	elf_end(elf);
	ulp_elf_cache_expire(ulp_now_us() + 31 * 1000000ull);
	assert_null(ulp_elf_cache_get(&id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_one_parse_for_every_user, setup),
		cmocka_unit_test_setup(test_another_file_is_refused, setup),
		cmocka_unit_test_setup(test_not_elf, setup),
		cmocka_unit_test_setup(test_flush, setup),
		cmocka_unit_test_setup(test_expire, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
