/* SPDX-License-Identifier: MIT */
/*
 * Reading patch descriptors from ELF files (libpatch/patch_file.c).
 *
 * The fixture patches (fixtures/patch_*.c) are real patches built with
 * ulp_add_patch().  Expected values come from elsewhere than the code under
 * test: symbol addresses and sizes from nm, and the descriptor as the
 * dynamic linker sees it after dlopen()ing the patch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error.h"
#include "patch_file.h"

#include <ulp/patch.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------ */

struct nm_sym {
	uint64_t value, size;
};

/* Value and size of a defined symbol of file, from `nm -P`. */
static struct nm_sym nm_lookup(const char *file, const char *name)
{
	struct nm_sym found = { 0, 0 };
	char cmd[4096], line[1024];
	int matches = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' -P -t x --defined-only '%s'", ULP_TEST_NM, file);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		char sym[512], type[8];
		unsigned long long value, size = 0;

		if (sscanf(line, "%511s %7s %llx %llx", sym, type, &value, &size) < 3)
			continue;
		if (strcmp(sym, name))
			continue;
		found.value = value;
		found.size = size;
		matches++;
	}
	assert_int_equal(pclose(p), 0);
	if (matches != 1)
		fail_msg("nm finds %d symbols named %s in %s", matches, name, file);
	return found;
}

static uint64_t nm_addr(const char *file, const char *name)
{
	return nm_lookup(file, name).value;
}

/* A temporary file holding len bytes of data; the caller unlinks it. */
static char *temp_file(const void *data, size_t len)
{
	char *path = strdup("/tmp/ulp-test-patch-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void *slurp(const char *path, size_t *len)
{
	struct stat st;
	void *buf;
	int fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc(st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, st.st_size), st.st_size);
	close(fd);
	*len = st.st_size;
	return buf;
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("ulp-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* Expect err and exactly this message. */
static void expect_error(const char *path, int err, const char *message)
{
	struct ulp_patch_info *info = (void *)1;

	ulp_error_clear();
	assert_int_equal(ulp_patch_info_read(path, &info), err);
	assert_null(info);
	assert_string_equal(ulp_last_error(), message);
}

/* Expect err and a message starting with the path and containing `part`. */
static void expect_error_containing(const char *path, int err, const char *part)
{
	struct ulp_patch_info *info = (void *)1;

	ulp_error_clear();
	assert_int_equal(ulp_patch_info_read(path, &info), err);
	assert_null(info);
	assert_memory_equal(ulp_last_error(), path, strlen(path));
	if (!strstr(ulp_last_error(), part))
		fail_msg("message \"%s\" lacks \"%s\"", ulp_last_error(), part);
}

struct build_id_search {
	const char *path;
	char hex[2 * 64 + 1];
};

static int find_loaded_build_id(struct dl_phdr_info *dl, size_t size, void *arg)
{
	struct build_id_search *s = arg;

	(void)size;
	if (strcmp(dl->dlpi_name, s->path))
		return 0;
	for (int i = 0; i < dl->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &dl->dlpi_phdr[i];
		const char *p = (const char *)(dl->dlpi_addr + ph->p_vaddr);
		size_t off = 0;

		if (ph->p_type != PT_NOTE)
			continue;
		while (off + sizeof(ElfW(Nhdr)) <= ph->p_memsz) {
			const ElfW(Nhdr) *nh = (const void *)(p + off);
			const unsigned char *desc =
				(const unsigned char *)(p + off + sizeof(*nh) +
							((nh->n_namesz + 3) & ~3u));

			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(p + off + sizeof(*nh), "GNU", 4)) {
				for (unsigned int j = 0; j < nh->n_descsz && j < 64; j++)
					sprintf(s->hex + 2 * j, "%02x", desc[j]);
				return 1;
			}
			off += sizeof(*nh) + ((nh->n_namesz + 3) & ~3u) +
			       ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

/* --- a full patch -------------------------------------------------------- */

static void check_func(const struct ulp_patch_func_info *f, const char *old_name,
		       unsigned long sympos, const char *new_sym, uint64_t desc)
{
	struct nm_sym s = nm_lookup(FIXTURE_PATCH_FULL, new_sym);

	assert_string_equal(f->old_name, old_name);
	assert_int_equal(f->old_sympos, sympos);
	assert_int_equal(f->new_func, s.value);
	assert_true(f->new_size > 0);
	assert_int_equal(f->new_size, s.size);
	/* shown by ulpctl status */
	assert_non_null(f->new_name);
	assert_string_equal(f->new_name, new_sym);
	assert_int_equal(f->desc, desc);
}

static void test_full_patch(void **state)
{
	const char *path = FIXTURE_PATCH_FULL;
	struct ulp_patch_info *info = NULL;
	const struct ulp_patch_object_info *o;
	uint64_t funcs, objs;

	(void)state;
	assert_int_equal(ulp_patch_info_read(path, &info), 0);
	assert_non_null(info);

	assert_string_equal(info->name, "full");
	assert_true(info->replace);
	assert_int_equal(info->desc, nm_addr(path, ULP_PATCH_SYMBOL));

	objs = nm_addr(path, "fx_objs");
	assert_int_equal(info->nr_objs, 2);

	/* The main program, with two of the four callbacks. */
	o = &info->objs[0];
	assert_null(o->name);
	assert_null(o->build_id);
	assert_int_equal(o->desc, objs);
	assert_int_equal(o->pre_patch, nm_addr(path, "fx_pre_patch"));
	assert_int_equal(o->post_patch, 0);
	assert_int_equal(o->pre_unpatch, 0);
	assert_int_equal(o->post_unpatch, nm_addr(path, "fx_post_unpatch"));
	assert_int_equal(o->nr_funcs, 4);
	funcs = nm_addr(path, "fx_main_funcs");
	check_func(&o->funcs[0], "compute", 0, "fx_new_compute", funcs);
	check_func(&o->funcs[1], "helper", 1, "fx_new_helper_first",
		   funcs + sizeof(struct ulp_func));
	check_func(&o->funcs[2], "helper", 2, "fx_new_helper_second",
		   funcs + 2 * sizeof(struct ulp_func));
	/* Reached through R_X86_64_64 against .dynsym, not RELATIVE. */
	check_func(&o->funcs[3], "exported", 0, "fx_new_exported",
		   funcs + 3 * sizeof(struct ulp_func));
	assert_int_not_equal(o->funcs[1].new_func, o->funcs[2].new_func);

	/* The library, pinned to a build-id (written partly uppercase). */
	o = &info->objs[1];
	assert_string_equal(o->name, "libdemo.so.1");
	assert_string_equal(o->build_id, "0123456789abcdef0123456789abcdef01234567");
	assert_int_equal(o->desc, objs + sizeof(struct ulp_object));
	assert_int_equal(o->pre_patch, 0);
	assert_int_equal(o->post_patch, nm_addr(path, "fx_post_patch"));
	assert_int_equal(o->pre_unpatch, nm_addr(path, "fx_pre_unpatch"));
	assert_int_equal(o->post_unpatch, 0);
	assert_int_equal(o->nr_funcs, 1);
	check_func(&o->funcs[0], "demo_compute", 3, "fx_new_demo_compute",
		   nm_addr(path, "fx_lib_funcs"));

	assert_int_equal(info->nr_states, 2);
	assert_int_equal(info->states[0].id, 1);
	assert_int_equal(info->states[0].version, 2);
	assert_int_equal(info->states[1].id, 42);
	assert_int_equal(info->states[1].version, 7);

	assert_int_equal(info->nr_symrefs, 2);
	assert_null(info->symrefs[0].object); /* "main" */
	assert_string_equal(info->symrefs[0].name, "counter");
	assert_int_equal(info->symrefs[0].sympos, 2);
	assert_int_equal(info->symrefs[0].addr_slot, nm_addr(path, "fx_counter_slot"));
	assert_string_equal(info->symrefs[1].object, "libdemo.so.1");
	assert_string_equal(info->symrefs[1].name, "demo_state");
	assert_int_equal(info->symrefs[1].sympos, 0);
	assert_int_equal(info->symrefs[1].addr_slot, nm_addr(path, "fx_demo_state_slot"));

	assert_non_null(info->build_id);
	assert_int_equal(strlen(info->build_id), 40);
	ulp_patch_info_free(info);
}

/*
 * The same patch as the dynamic linker lays it out: every vaddr read from
 * the file plus the load base must be what the loaded descriptor holds.
 */
static void test_full_patch_matches_dlopen(void **state)
{
	struct build_id_search search = { .path = FIXTURE_PATCH_FULL };
	struct ulp_patch_info *info = NULL;
	const struct ulp_patch *loaded;
	struct link_map *lm;
	uintptr_t base;
	void *h;

	(void)state;
	assert_int_equal(ulp_patch_info_read(FIXTURE_PATCH_FULL, &info), 0);

	/* Lazy binding: ulp_log and friends are only called, never resolved here. */
	h = dlopen(FIXTURE_PATCH_FULL, RTLD_LAZY | RTLD_LOCAL);
	if (!h)
		fail_msg("dlopen: %s", dlerror());
	assert_int_equal(dlinfo(h, RTLD_DI_LINKMAP, &lm), 0);
	base = lm->l_addr;
	loaded = dlsym(h, ULP_PATCH_SYMBOL);
	assert_non_null(loaded);

	assert_int_equal(info->desc + base, (uintptr_t)loaded);
	assert_string_equal(info->name, loaded->name);
	assert_int_equal(info->replace, loaded->replace);
	for (size_t i = 0; i < info->nr_objs; i++) {
		const struct ulp_patch_object_info *o = &info->objs[i];
		const struct ulp_object *lo = &loaded->objs[i];

		assert_int_equal(o->desc + base, (uintptr_t)lo);
		if (lo->name && strcmp(lo->name, "main"))
			assert_string_equal(o->name, lo->name);
		else
			assert_null(o->name);
		assert_int_equal(o->pre_patch ? o->pre_patch + base : 0,
				 (uintptr_t)lo->callbacks.pre_patch);
		assert_int_equal(o->post_patch ? o->post_patch + base : 0,
				 (uintptr_t)lo->callbacks.post_patch);
		assert_int_equal(o->pre_unpatch ? o->pre_unpatch + base : 0,
				 (uintptr_t)lo->callbacks.pre_unpatch);
		assert_int_equal(o->post_unpatch ? o->post_unpatch + base : 0,
				 (uintptr_t)lo->callbacks.post_unpatch);
		for (size_t j = 0; j < o->nr_funcs; j++) {
			assert_string_equal(o->funcs[j].old_name, lo->funcs[j].old_name);
			assert_int_equal(o->funcs[j].new_func + base,
					 (uintptr_t)lo->funcs[j].new_func);
			assert_int_equal(o->funcs[j].old_sympos, lo->funcs[j].old_sympos);
		}
		assert_null(lo->funcs[o->nr_funcs].old_name);
	}
	assert_null(loaded->objs[info->nr_objs].funcs);
	for (size_t i = 0; i < info->nr_symrefs; i++)
		assert_int_equal(info->symrefs[i].addr_slot + base,
				 (uintptr_t)loaded->symbols[i].addr);

	assert_int_equal(dl_iterate_phdr(find_loaded_build_id, &search), 1);
	assert_string_equal(info->build_id, search.hex);

	dlclose(h);
	ulp_patch_info_free(info);
}

static void test_minimal_patch(void **state)
{
	const char *path = FIXTURE_PATCH_MIN;
	struct ulp_patch_info *info = NULL;
	const struct ulp_patch_object_info *o;

	(void)state;
	assert_int_equal(ulp_patch_info_read(path, &info), 0);
	assert_string_equal(info->name, "minimal");
	assert_false(info->replace);
	assert_int_equal(info->nr_objs, 1);
	o = &info->objs[0];
	assert_null(o->name); /* "main" means the main program */
	assert_null(o->build_id);
	assert_int_equal(o->pre_patch, 0);
	assert_int_equal(o->post_patch, 0);
	assert_int_equal(o->pre_unpatch, 0);
	assert_int_equal(o->post_unpatch, 0);
	assert_int_equal(o->nr_funcs, 1);
	assert_string_equal(o->funcs[0].old_name, "compute");
	assert_int_equal(o->funcs[0].old_sympos, 0);
	assert_int_equal(o->funcs[0].new_func, nm_addr(path, "fx_min_compute"));
	assert_int_equal(o->funcs[0].new_size, nm_lookup(path, "fx_min_compute").size);
	assert_int_equal(info->nr_states, 0);
	assert_null(info->states);
	assert_int_equal(info->nr_symrefs, 0);
	assert_null(info->symrefs);
	assert_non_null(info->build_id);
	ulp_patch_info_free(info);
}

/* From a file descriptor (a sealed memfd in the daemon), named as told. */
static void test_read_fd(void **state)
{
	struct ulp_patch_info *info = NULL;
	size_t len;
	void *data = slurp(FIXTURE_PATCH_FULL, &len);
	int fd;

	(void)state;
	fd = memfd_with(data, len);
	assert_int_equal(ulp_patch_info_read_fd(fd, "memfd:full", &info), 0);
	assert_string_equal(info->name, "full");
	assert_int_equal(info->nr_objs, 2);
	ulp_patch_info_free(info);
	close(fd);
	free(data);

	fd = memfd_with("hello\n", 6);
	info = (void *)1;
	assert_int_equal(ulp_patch_info_read_fd(fd, "memfd:text", &info), -ENOEXEC);
	assert_null(info);
	assert_string_equal(ulp_last_error(), "memfd:text: not an ELF file");
	close(fd);
}

/* --- files that are not patches ------------------------------------------ */

static void test_not_elf(void **state)
{
	static const char text[] = "#!/bin/sh\necho this is not an ELF file\n";
	char msg[512];
	char *path = temp_file(text, sizeof(text) - 1);

	(void)state;
	snprintf(msg, sizeof(msg), "%s: not an ELF file", path);
	expect_error(path, -ENOEXEC, msg);
	unlink(path);
	free(path);

	path = temp_file("", 0);
	snprintf(msg, sizeof(msg), "%s: not an ELF file", path);
	expect_error(path, -ENOEXEC, msg);
	unlink(path);
	free(path);
}

static void fill_ident(unsigned char *ident, int class)
{
	memcpy(ident, ELFMAG, SELFMAG);
	ident[EI_CLASS] = class;
	ident[EI_DATA] = ELFDATA2LSB;
	ident[EI_VERSION] = EV_CURRENT;
}

static char *elf64_header_file(unsigned int type, unsigned int machine)
{
	Elf64_Ehdr eh;

	memset(&eh, 0, sizeof(eh));
	fill_ident(eh.e_ident, ELFCLASS64);
	eh.e_type = type;
	eh.e_machine = machine;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = sizeof(eh);
	return temp_file(&eh, sizeof(eh));
}

static void test_wrong_architecture(void **state)
{
	char msg[512];
	char *path;
	Elf32_Ehdr eh32;

	(void)state;
	path = elf64_header_file(ET_DYN, EM_AARCH64);
	snprintf(msg, sizeof(msg), "%s: wrong architecture (ELF machine 183, expected x86-64)",
		 path);
	expect_error(path, -ENOEXEC, msg);
	unlink(path);
	free(path);

	memset(&eh32, 0, sizeof(eh32));
	fill_ident(eh32.e_ident, ELFCLASS32);
	eh32.e_type = ET_DYN;
	eh32.e_machine = EM_386;
	eh32.e_version = EV_CURRENT;
	eh32.e_ehsize = sizeof(eh32);
	path = temp_file(&eh32, sizeof(eh32));
	snprintf(msg, sizeof(msg), "%s: wrong architecture (32-bit ELF machine 3, expected x86-64)",
		 path);
	expect_error(path, -ENOEXEC, msg);
	unlink(path);
	free(path);
}

static void test_not_shared_object(void **state)
{
	char *path = elf64_header_file(ET_REL, EM_X86_64);

	(void)state;
	expect_error_containing(path, -ENOEXEC, ": not a shared object");
	unlink(path);
	free(path);
}

static void test_no_descriptor(void **state)
{
	char msg[1024];

	(void)state;
	snprintf(msg, sizeof(msg),
		 "%s is not a ulp patch: no patch descriptor (ulp_patch_descriptor)",
		 FIXTURE_PLAIN_LIB);
	expect_error(FIXTURE_PLAIN_LIB, -ENOEXEC, msg);
}

static void test_wrong_abi_version(void **state)
{
	(void)state;
	expect_error_containing(FIXTURE_PATCH_BADABI, -EPROTO, "ABI version 99 is not supported");
}

static void test_pointer_outside_image(void **state)
{
	(void)state;
	expect_error_containing(
		FIXTURE_PATCH_BADPTR, -ENOEXEC,
		"malformed patch: name (0x7ffff0000000) points outside the patch image");
}

static void test_no_objects(void **state)
{
	(void)state;
	expect_error_containing(FIXTURE_PATCH_NOOBJS, -ENOEXEC, "no objects");
}

static void test_missing_file(void **state)
{
	(void)state;
	expect_error("/nonexistent/ulp/patch.so", -ENOENT,
		     "/nonexistent/ulp/patch.so: No such file or directory");
}

/* Cut a real patch short anywhere: an error, never a crash or a leak. */
static void test_truncated(void **state)
{
	size_t len, cuts[] = { 4, 16, 63, 64, 200, 1000, 0, 0, 0 };
	void *data = slurp(FIXTURE_PATCH_FULL, &len);

	(void)state;
	cuts[6] = len / 2;
	cuts[7] = len * 3 / 4;
	cuts[8] = len - 1;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct ulp_patch_info *info = NULL;
		int fd = memfd_with(data, cuts[i]);
		int r = ulp_patch_info_read_fd(fd, "truncated", &info);

		/* Up to the descriptor's data, nothing can be read. */
		if (cuts[i] <= len / 2)
			assert_true(r < 0);
		assert_true(r <= 0);
		assert_true(r == 0 ? info != NULL : info == NULL);
		ulp_patch_info_free(info);
		close(fd);
	}
	free(data);
}

/*
 * Random corruption of a real patch: whatever the reader makes of it, it
 * must stay within its buffers (ASan checks) and free what it allocates.
 */
static void test_corrupted(void **state)
{
	size_t len;
	unsigned char *data = slurp(FIXTURE_PATCH_FULL, &len);
	unsigned char *copy = malloc(len);
	unsigned int seed = 12345;
	int ok = 0;

	(void)state;
	assert_non_null(copy);
	for (int round = 0; round < 400; round++) {
		struct ulp_patch_info *info = NULL;
		int fd, r;

		memcpy(copy, data, len);
		for (int k = 0; k < 1 + round % 8; k++)
			copy[rand_r(&seed) % len] = rand_r(&seed);
		fd = memfd_with(copy, len);
		r = ulp_patch_info_read_fd(fd, "corrupted", &info);
		assert_true(r <= 0);
		assert_true(r == 0 ? info != NULL : info == NULL);
		if (r == 0)
			ok++;
		ulp_patch_info_free(info);
		close(fd);
	}
	/* Most single-byte changes hit nothing the reader depends on. */
	assert_true(ok > 0);
	free(copy);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_patch),
		cmocka_unit_test(test_full_patch_matches_dlopen),
		cmocka_unit_test(test_minimal_patch),
		cmocka_unit_test(test_read_fd),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_wrong_architecture),
		cmocka_unit_test(test_not_shared_object),
		cmocka_unit_test(test_no_descriptor),
		cmocka_unit_test(test_wrong_abi_version),
		cmocka_unit_test(test_pointer_outside_image),
		cmocka_unit_test(test_no_objects),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
