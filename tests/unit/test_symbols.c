/* SPDX-License-Identifier: MIT */
/*
 * Symbols of running processes (libpatch/symbols.c).
 *
 * Two processes are looked at: this test program itself (a PIE, with two
 * static functions named ulp_fx_dup from fixtures/dup_[ab].c) and a child
 * running fixtures/nonpie_target.c (ET_EXEC, linked with a library that has
 * .dynsym only), which prints the addresses it knows to a pipe.  Expected
 * addresses come from the processes themselves, dlsym, dl_iterate_phdr
 * and nm, never from libdwfl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "elf_cache.h"
#include "error.h"
#include "symbols.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *ulp_fx_dup_a_addr(void);
void *ulp_fx_dup_b_addr(void);

/* A global function of the main program, resolved as "main". */
__attribute__((noinline)) int ulp_test_global_function(int x)
{
	return x * 2 + 1;
}

/* --- helpers ------------------------------------------------------------ */

static struct ulp_symbols *open_pid(pid_t pid)
{
	struct ulp_symbols *syms = NULL;
	int r = ulp_symbols_open(pid, &syms);

	if (r)
		fail_msg("ulp_symbols_open(%d): %d: %s", (int)pid, r, ulp_last_error());
	assert_non_null(syms);
	return syms;
}

static uint64_t resolve_ok(struct ulp_symbols *syms, const char *object, const char *name,
			   unsigned long sympos, struct ulp_symbol *out)
{
	struct ulp_symbol sym;
	int r;

	r = ulp_symbols_resolve(syms, object, name, sympos, &sym);
	if (r)
		fail_msg("resolve %s:%s/%lu: %d: %s", object ? object : "main", name, sympos, r,
			 ulp_last_error());
	if (out)
		*out = sym;
	return sym.addr;
}

static void expect_resolve_error(struct ulp_symbols *syms, const char *object, const char *name,
				 unsigned long sympos, int err, const char *message)
{
	struct ulp_symbol sym;

	ulp_error_clear();
	assert_int_equal(ulp_symbols_resolve(syms, object, name, sympos, &sym), err);
	if (message)
		assert_string_equal(ulp_last_error(), message);
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("\"%s\" lacks \"%s\"", haystack, needle);
}

/* Values of a symbol name in symbol-table order (`nm -p`: unsorted). */
static size_t nm_values(const char *file, const char *name, bool dynamic, uint64_t *values,
			size_t max)
{
	char cmd[4096], line[1024];
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' -P -p -t x --defined-only %s '%s'", ULP_TEST_NM,
		 dynamic ? "-D" : "", file);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		char sym[512], type[8];
		unsigned long long value;

		/* nm -D shows versions: "name@@VERSION". */
		if (sscanf(line, "%511s %7s %llx", sym, type, &value) == 3 &&
		    !strncmp(sym, name, strlen(name)) &&
		    (sym[strlen(name)] == '\0' || sym[strlen(name)] == '@') && n < max)
			values[n++] = value;
	}
	assert_int_equal(pclose(p), 0);
	return n;
}

static char *real_path(const char *path)
{
	char *r = realpath(path, NULL);

	assert_non_null(r);
	return r;
}

/* Can this process open /proc/PID/map_files entries (CAP_SYS_ADMIN)? */
static bool can_open_map_files(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	bool ok = false;
	DIR *dir;
	int fd;

	dir = opendir("/proc/self/map_files");
	assert_non_null(dir);
	while ((de = readdir(dir)) && de->d_name[0] == '.')
		;
	if (de) {
		snprintf(path, sizeof(path), "/proc/self/map_files/%s", de->d_name);
		fd = open(path, O_RDONLY);
		ok = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	closedir(dir);
	return ok;
}

/*
 * Give up what opening map_files takes.  The bounding set too, so that a
 * program exec'd as root afterwards does not get it back.  A reader may
 * only look into processes whose capabilities it has itself (effective),
 * so readers and targets of the unprivileged checks both drop these.
 */
static int drop_admin_caps(void)
{
	static const int caps[] = { CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE };
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0); /* fails unless privileged: fine */
		data[caps[i] / 32].effective &= ~(1u << (caps[i] % 32));
		data[caps[i] / 32].permitted &= ~(1u << (caps[i] % 32));
		data[caps[i] / 32].inheritable &= ~(1u << (caps[i] % 32));
	}
	return syscall(SYS_capset, &hdr, data);
}

/*
 * Run fn(arg) in a child process without the privilege to open map_files,
 * as an ordinary caller would be.  fn returns 0 for success or the number of
 * the check that failed; cmocka's asserts are not usable in the child.
 */
static int unprivileged(int (*fn)(void *), void *arg)
{
	int status = 0;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		if (drop_admin_caps())
			_exit(100);
		_exit(fn(arg));
	}
	for (int i = 0;; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (i == 3000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("unprivileged check did not finish in 30 s");
		}
		usleep(10000);
	}
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

struct phdr_search {
	const char *suffix; /* "" for the main program */
	const char *path;
	uintptr_t base;
	char build_id[2 * 64 + 1];
	bool found;
};

/* The GNU build-id note as mapped, found with dl_iterate_phdr. */
static int phdr_callback(struct dl_phdr_info *dl, size_t size, void *arg)
{
	struct phdr_search *s = arg;
	size_t len = strlen(dl->dlpi_name), slen = strlen(s->suffix);

	(void)size;
	if (slen ? len < slen || strcmp(dl->dlpi_name + len - slen, s->suffix) : len != 0)
		return 0;
	s->found = true;
	s->path = dl->dlpi_name;
	s->base = dl->dlpi_addr;
	for (int i = 0; i < dl->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &dl->dlpi_phdr[i];
		const char *p = (const char *)(dl->dlpi_addr + ph->p_vaddr);
		size_t align = ph->p_align == 8 ? 8 : 4, off = 0;

		if (ph->p_type != PT_NOTE)
			continue;
		while (off + sizeof(ElfW(Nhdr)) <= ph->p_memsz) {
			const ElfW(Nhdr) *nh = (const void *)(p + off);
			size_t name_off = off + sizeof(*nh);
			size_t desc_off = name_off + ((nh->n_namesz + align - 1) & ~(align - 1));

			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(p + name_off, "GNU", 4)) {
				for (unsigned int j = 0; j < nh->n_descsz && j < 64; j++)
					sprintf(s->build_id + 2 * j, "%02x",
						(unsigned char)p[desc_off + j]);
				return 1;
			}
			off = desc_off + ((nh->n_descsz + align - 1) & ~(align - 1));
		}
	}
	return 1;
}

/* --- this process (PIE) -------------------------------------------------- */

static void test_self_main_function(void **state)
{
	struct phdr_search main_prog = { .suffix = "" };
	const struct ulp_object_map *m, *m2;
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	char exe[PATH_MAX];
	ssize_t n;

	(void)state;
	syms = open_pid(getpid());
	m = ulp_symbols_find_object(syms, "main");
	m2 = ulp_symbols_find_object(syms, NULL);
	assert_non_null(m);
	assert_ptr_equal(m, m2);
	assert_true(m->is_main);
	assert_string_equal(m->name, "main");

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_string_equal(m->path, exe);

	/* A PIE: the bias is where the dynamic linker put it. */
	dl_iterate_phdr(phdr_callback, &main_prog);
	assert_true(main_prog.found);
	assert_int_not_equal(main_prog.base, 0);
	assert_int_equal(m->bias, main_prog.base);

	assert_int_equal(resolve_ok(syms, "main", "ulp_test_global_function", 0, &sym),
			 (uintptr_t)ulp_test_global_function);
	assert_int_equal(sym.type, STT_FUNC);
	assert_false(sym.local);
	assert_true(sym.size > 0);
	assert_int_equal(resolve_ok(syms, NULL, "ulp_test_global_function", 1, NULL),
			 (uintptr_t)ulp_test_global_function);
	assert_true(m->start <= (uintptr_t)ulp_test_global_function &&
		    (uintptr_t)ulp_test_global_function < m->end);
	ulp_symbols_close(syms);
}

static void test_self_libc_function(void **state)
{
	const struct ulp_object_map *m;
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	void *libc, *real;

	(void)state;
	/* Through libc's own handle: dlsym(RTLD_DEFAULT) may find a sanitizer's wrapper. */
	libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	assert_non_null(libc);
	real = dlsym(libc, "getpid");
	assert_non_null(real);

	syms = open_pid(getpid());
	m = ulp_symbols_find_object(syms, "libc.so.6");
	assert_non_null(m);
	assert_false(m->is_main);
	assert_string_equal(m->name, "libc.so.6");
	assert_non_null(strstr(m->path, "libc"));
	assert_int_equal(resolve_ok(syms, "libc.so.6", "getpid", 0, &sym), (uintptr_t)real);
	assert_int_equal(sym.type, STT_FUNC);
	assert_false(sym.local);
	assert_ptr_equal(ulp_symbols_object_at(syms, (uintptr_t)real), m);
	ulp_symbols_close(syms);
	dlclose(libc);
}

static void test_self_ambiguous(void **state)
{
	uint64_t a = (uintptr_t)ulp_fx_dup_a_addr(), b = (uintptr_t)ulp_fx_dup_b_addr();
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	char hex[32];

	(void)state;
	assert_int_not_equal(a, b);
	syms = open_pid(getpid());
	expect_resolve_error(syms, "main", "ulp_fx_dup", 0, -ENOTUNIQ, NULL);
	assert_contains(ulp_last_error(),
			"symbol 'ulp_fx_dup' is ambiguous in object 'main': 2 candidates: 0x");
	assert_contains(ulp_last_error(), "; set old_sympos");
	snprintf(hex, sizeof(hex), "0x%" PRIx64 " (sympos ", a);
	assert_contains(ulp_last_error(), hex);
	snprintf(hex, sizeof(hex), "0x%" PRIx64 " (sympos ", b);
	assert_contains(ulp_last_error(), hex);

	/* The main program as NULL works the same. */
	assert_int_equal(ulp_symbols_resolve(syms, NULL, "ulp_fx_dup", 0, &sym), -ENOTUNIQ);
	ulp_symbols_close(syms);
}

static void test_self_sympos(void **state)
{
	uint64_t a = (uintptr_t)ulp_fx_dup_a_addr(), b = (uintptr_t)ulp_fx_dup_b_addr();
	uint64_t first, second, order[4];
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	char exe[PATH_MAX], msg[256];
	ssize_t n;

	(void)state;
	syms = open_pid(getpid());
	first = resolve_ok(syms, "main", "ulp_fx_dup", 1, &sym);
	assert_true(sym.local);
	assert_int_equal(sym.type, STT_FUNC);
	second = resolve_ok(syms, "main", "ulp_fx_dup", 2, &sym);
	assert_true(sym.local);
	assert_int_not_equal(first, second);
	assert_true((first == a && second == b) || (first == b && second == a));

	/* sympos follows the symbol table's order, which nm -p shows. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_int_equal(nm_values(exe, "ulp_fx_dup", false, order, 4), 2);
	assert_int_equal(first - ulp_symbols_find_object(syms, "main")->bias, order[0]);
	assert_int_equal(second - ulp_symbols_find_object(syms, "main")->bias, order[1]);

	snprintf(msg, sizeof(msg),
		 "symbol 'ulp_fx_dup' in object 'main': sympos 3 is out of range (2 candidates)");
	expect_resolve_error(syms, "main", "ulp_fx_dup", 3, -ERANGE, msg);
	ulp_symbols_close(syms);
}

static void test_self_unknown(void **state)
{
	struct ulp_symbols *syms;
	char msg[256];

	(void)state;
	syms = open_pid(getpid());
	expect_resolve_error(syms, "main", "ulp_no_such_function", 0, -ENOENT,
			     "symbol 'ulp_no_such_function' not found in object 'main'");
	expect_resolve_error(syms, "libc.so.6", "ulp_test_global_function", 0, -ENOENT,
			     "symbol 'ulp_test_global_function' not found in object 'libc.so.6'");
	snprintf(msg, sizeof(msg), "object 'libulp-not-loaded.so.9' is not loaded in process %d",
		 (int)getpid());
	expect_resolve_error(syms, "libulp-not-loaded.so.9", "foo", 0, -ENOENT, msg);
	assert_null(ulp_symbols_find_object(syms, "libulp-not-loaded.so.9"));
	ulp_symbols_close(syms);
}

static void test_self_object_and_name_at(void **state)
{
	uintptr_t fn = (uintptr_t)ulp_test_global_function;
	uintptr_t dup = (uintptr_t)ulp_fx_dup_a_addr();
	const struct ulp_object_map *m, *prev = NULL;
	struct ulp_symbols *syms;
	uint64_t start = 0;
	size_t nr_main = 0;

	(void)state;
	syms = open_pid(getpid());
	m = ulp_symbols_object_at(syms, fn);
	assert_non_null(m);
	assert_true(m->is_main);
	assert_null(ulp_symbols_object_at(syms, 0));

	assert_string_equal(ulp_symbols_name_at(syms, fn + 1, &start), "ulp_test_global_function");
	assert_int_equal(start, fn);
	assert_string_equal(ulp_symbols_name_at(syms, dup, &start), "ulp_fx_dup");
	assert_int_equal(start, dup);
	assert_null(ulp_symbols_name_at(syms, 0, &start));

	/* Objects come in address order, named, with one main program. */
	assert_true(ulp_symbols_nr_objects(syms) >= 3);
	for (size_t i = 0; i < ulp_symbols_nr_objects(syms); i++) {
		m = ulp_symbols_object(syms, i);
		assert_non_null(m->name);
		assert_non_null(m->path);
		assert_true(m->start < m->end);
		if (prev)
			assert_true(prev->start < m->start);
		nr_main += m->is_main;
		assert_ptr_equal(ulp_symbols_object_at(syms, m->start), m);
		prev = m;
	}
	assert_int_equal(nr_main, 1);
	assert_null(ulp_symbols_object(syms, ulp_symbols_nr_objects(syms)));
	ulp_symbols_close(syms);
}

static void test_self_build_ids(void **state)
{
	struct phdr_search main_prog = { .suffix = "" }, libc = { .suffix = "/libc.so.6" };
	struct ulp_symbols *syms;

	(void)state;
	dl_iterate_phdr(phdr_callback, &main_prog);
	dl_iterate_phdr(phdr_callback, &libc);
	assert_true(main_prog.found && libc.found);
	assert_int_equal(strlen(main_prog.build_id), 40);

	syms = open_pid(getpid());
	assert_string_equal(ulp_symbols_find_object(syms, "main")->build_id, main_prog.build_id);
	assert_string_equal(ulp_symbols_find_object(syms, "libc.so.6")->build_id, libc.build_id);
	assert_int_equal(ulp_symbols_find_object(syms, "libc.so.6")->bias, libc.base);
	ulp_symbols_close(syms);
}

static void *map_file(const char *path, size_t *len)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	close(fd);
	*len = st.st_size;
	return p;
}

/* ELF files mapped as data (as a debugger would) are not loaded objects. */
static void test_self_data_mappings(void **state)
{
	struct phdr_search libc = { .suffix = "/libc.so.6" };
	size_t libc_len, lib_len;
	struct ulp_symbols *syms;
	void *libc_data, *lib_data;

	(void)state;
	dl_iterate_phdr(phdr_callback, &libc);
	assert_true(libc.found);
	libc_data = map_file(libc.path, &libc_len);
	lib_data = map_file(FIXTURE_STRIPPED, &lib_len);

	syms = open_pid(getpid());
	assert_null(ulp_symbols_find_object(syms, FIXTURE_STRIPPED_SONAME));
	assert_null(ulp_symbols_object_at(syms, (uintptr_t)lib_data));
	assert_int_equal(ulp_symbols_find_object(syms, "libc.so.6")->bias, libc.base);
	assert_null(ulp_symbols_object_at(syms, (uintptr_t)libc_data));
	ulp_symbols_close(syms);

	munmap(libc_data, libc_len);
	munmap(lib_data, lib_len);
}

static void test_no_such_process(void **state)
{
	struct ulp_symbols *syms = (void *)1;
	char msg[64];
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(ulp_symbols_open(INT_MAX, &syms), -ESRCH);
	assert_null(syms);
	snprintf(msg, sizeof(msg), "no such process: %d", INT_MAX);
	assert_string_equal(ulp_last_error(), msg);
	assert_int_equal(ulp_symbols_open(0, &syms), -ESRCH);
	assert_int_equal(ulp_symbols_open(-1, &syms), -ESRCH);

	/* A child that has exited and been reaped. */
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(ulp_symbols_open(pid, &syms), -ESRCH);
	snprintf(msg, sizeof(msg), "no such process: %d", (int)pid);
	assert_string_equal(ulp_last_error(), msg);
}

/* A zombie still has a /proc entry, but nothing mapped. */
static void test_zombie(void **state)
{
	struct ulp_symbols *syms = (void *)1;
	char path[64], stat[256];
	bool zombie = false;
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(0);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 500 && !zombie; i++) {
		FILE *f = fopen(path, "r");

		assert_non_null(f);
		if (fgets(stat, sizeof(stat), f) && strstr(stat, ") Z "))
			zombie = true;
		fclose(f);
		if (!zombie)
			usleep(10000);
	}
	assert_true(zombie);
	assert_int_equal(ulp_symbols_open(pid, &syms), -ESRCH);
	assert_null(syms);
	snprintf(stat, sizeof(stat), "process %d has exited (it is a zombie)", (int)pid);
	assert_string_equal(ulp_last_error(), stat);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* --- a non-PIE child with a stripped library ----------------------------- */

struct child {
	pid_t pid;
	uint64_t global_fn, local_fn, counter, lib_fn, lib_v1, lib_v2, lib_static;
	char *exe; /* the file it runs */
};

/* Start exe with its stdout on a pipe; read the addresses it prints. */
static void start_child(struct child *c, const char *exe)
{
	char line[512] = "";
	struct pollfd pfd;
	size_t len = 0;
	int fds[2], n;

	memset(c, 0, sizeof(*c));
	c->exe = strdup(exe);
	assert_non_null(c->exe);
	assert_int_equal(pipe(fds), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (!c->pid) {
		/* Never outlive the test, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* So that the unprivileged checks may look into it. */
		drop_admin_caps();
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);

	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (!memchr(line, '\n', len)) {
		ssize_t r;

		if (poll(&pfd, 1, 10000) != 1)
			fail_msg("no output from %s within 10 s", exe);
		r = read(fds[0], line + len, sizeof(line) - 1 - len);
		if (r <= 0)
			fail_msg("%s exited without output", exe);
		len += r;
		line[len] = '\0';
	}
	close(fds[0]);
	n = sscanf(line,
		   "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64
		   " %" SCNx64,
		   &c->global_fn, &c->local_fn, &c->counter, &c->lib_fn, &c->lib_v1, &c->lib_v2,
		   &c->lib_static);
	assert_int_equal(n, 7);
}

static void stop_child(struct child *c)
{
	int status;

	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		/* SIGKILL cannot be ignored; still, never hang a test run. */
		for (int i = 0; i < 500; i++) {
			if (waitpid(c->pid, &status, WNOHANG) != 0)
				break;
			usleep(10000);
		}
	}
	free(c->exe);
	c->pid = 0;
	c->exe = NULL;
}

static int group_setup(void **state)
{
	struct child *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	*state = c;
	return 0;
}

static int group_teardown(void **state)
{
	struct child *c = *state;

	stop_child(c);
	free(c);
	return 0;
}

static int child_setup(void **state)
{
	start_child(*state, FIXTURE_NONPIE);
	return 0;
}

static int child_teardown(void **state)
{
	stop_child(*state);
	return 0;
}

static void test_nonpie_main(void **state)
{
	struct child *c = *state;
	const struct ulp_object_map *m;
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	uint64_t nm_value;
	char *exe = real_path(FIXTURE_NONPIE);

	syms = open_pid(c->pid);
	m = ulp_symbols_find_object(syms, "main");
	assert_non_null(m);
	assert_true(m->is_main);
	assert_string_equal(m->path, exe);
	assert_int_equal(m->bias, 0); /* ET_EXEC: link-time addresses are runtime addresses */

	assert_int_equal(resolve_ok(syms, "main", "ulp_fx_nonpie_global", 0, &sym), c->global_fn);
	assert_false(sym.local);
	assert_int_equal(nm_values(exe, "ulp_fx_nonpie_global", false, &nm_value, 1), 1);
	assert_int_equal(nm_value, c->global_fn);

	assert_int_equal(resolve_ok(syms, "main", "ulp_fx_nonpie_local", 0, &sym), c->local_fn);
	assert_true(sym.local);
	assert_int_equal(sym.type, STT_FUNC);

	assert_int_equal(resolve_ok(syms, "main", "ulp_fx_nonpie_counter", 0, &sym), c->counter);
	assert_int_equal(sym.type, STT_OBJECT);
	assert_int_equal(sym.size, sizeof(int));

	assert_ptr_equal(ulp_symbols_object_at(syms, c->global_fn), m);
	assert_string_equal(ulp_symbols_name_at(syms, c->local_fn + 2, NULL),
			    "ulp_fx_nonpie_local");
	ulp_symbols_close(syms);
	free(exe);
}

static bool has_symtab(const char *path)
{
	bool found = false;
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;
	Elf *elf;
	int fd;

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &shdr) && shdr.sh_type == SHT_SYMTAB)
			found = true;
	elf_end(elf);
	close(fd);
	return found;
}

static void test_nonpie_stripped_library(void **state)
{
	struct child *c = *state;
	const struct ulp_object_map *m;
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	uint64_t nm_value, p1, p2, values[4];
	char *lib = real_path(FIXTURE_STRIPPED);
	char msg[256];

	assert_false(has_symtab(lib));
	syms = open_pid(c->pid);
	m = ulp_symbols_find_object(syms, FIXTURE_STRIPPED_SONAME);
	assert_non_null(m);
	assert_false(m->is_main);
	/* Named by DT_SONAME, not by the file name (libulpfxstripped.so.1.2.3). */
	assert_string_equal(m->name, FIXTURE_STRIPPED_SONAME);
	assert_string_equal(m->path, lib);
	assert_string_not_equal(strrchr(m->path, '/') + 1, FIXTURE_STRIPPED_SONAME);
	assert_non_null(m->build_id);

	assert_int_equal(resolve_ok(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_stripped_fn", 0, &sym),
			 c->lib_fn);
	assert_int_equal(sym.type, STT_FUNC);
	assert_int_equal(nm_values(lib, "ulp_fx_stripped_fn", true, &nm_value, 1), 1);
	assert_int_equal(nm_value + m->bias, c->lib_fn);

	/* Stripped away with .symtab. */
	snprintf(msg, sizeof(msg), "symbol 'ulp_fx_stripped_static' not found in object '%s'",
		 FIXTURE_STRIPPED_SONAME);
	expect_resolve_error(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_stripped_static", 0, -ENOENT,
			     msg);

	/*
	 * Two versions of one name: the plain name means the default version
	 * (as for ld.so), and sympos still reaches both.
	 */
	assert_int_equal(resolve_ok(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_versioned", 0, NULL),
			 c->lib_v2);
	p1 = resolve_ok(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_versioned", 1, NULL);
	p2 = resolve_ok(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_versioned", 2, NULL);
	assert_true((p1 == c->lib_v1 && p2 == c->lib_v2) || (p1 == c->lib_v2 && p2 == c->lib_v1));
	expect_resolve_error(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_versioned", 3, -ERANGE, NULL);

	/* One function exported as two versions of one name: one candidate. */
	assert_int_equal(nm_values(lib, "ulp_fx_alias", true, values, 4), 2);
	assert_int_equal(values[0], values[1]);
	assert_int_equal(resolve_ok(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_alias", 0, NULL),
			 values[0] + m->bias);
	expect_resolve_error(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_alias", 2, -ERANGE, NULL);

	assert_ptr_equal(ulp_symbols_object_at(syms, c->lib_fn), m);
	assert_string_equal(ulp_symbols_name_at(syms, c->lib_fn, NULL), "ulp_fx_stripped_fn");
	ulp_symbols_close(syms);
	free(lib);
}

/*
 * The program file deleted while it runs (as after a package upgrade): its
 * symbols, static ones included, still come from the file it runs.
 */
/* What a caller without privileges gets for the deleted program. */
static int deleted_exe_unprivileged(void *arg)
{
	const struct child *c = arg;
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	int ret = 0;

	if (can_open_map_files())
		return 1; /* still privileged: the test would prove nothing */
	if (ulp_symbols_open(c->pid, &syms))
		return 2;
	if (!ulp_symbols_find_object(syms, "main"))
		ret = 3;
	else if (ulp_symbols_resolve(syms, "main", "ulp_fx_nonpie_global", 0, &sym) ||
		 sym.addr != c->global_fn)
		ret = 4;
	else if (ulp_symbols_resolve(syms, "main", "ulp_fx_nonpie_local", 0, &sym) ||
		 sym.addr != c->local_fn)
		ret = 5;
	ulp_symbols_close(syms);
	return ret;
}

/*
 * The program file deleted while it runs (as after a package upgrade): its
 * symbols, static ones included, still come from the file it runs, through
 * /proc/PID/map_files for a privileged caller, /proc/PID/exe otherwise.
 */
static void test_nonpie_deleted_exe(void **state)
{
	struct child *c = *state;
	char copy[] = "/tmp/ulp-test-nonpie-XXXXXX", cmd[PATH_MAX + 64];
	const struct ulp_object_map *m;
	struct ulp_symbols *syms;
	int fd;

	fd = mkstemp(copy);
	assert_true(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 755 '%s'", FIXTURE_NONPIE, copy, copy);
	assert_int_equal(system(cmd), 0);
	stop_child(c);
	start_child(c, copy);
	assert_int_equal(unlink(copy), 0);

	syms = open_pid(c->pid);
	m = ulp_symbols_find_object(syms, "main");
	assert_non_null(m);
	assert_true(m->is_main);
	assert_non_null(strstr(m->path, "(deleted)"));
	assert_int_equal(resolve_ok(syms, "main", "ulp_fx_nonpie_global", 0, NULL), c->global_fn);
	assert_int_equal(resolve_ok(syms, "main", "ulp_fx_nonpie_local", 0, NULL), c->local_fn);
	ulp_symbols_close(syms);

	if (can_open_map_files())
		assert_int_equal(unprivileged(deleted_exe_unprivileged, c), 0);
}

static void test_exited_child(void **state)
{
	struct child *c = *state;
	struct ulp_symbols *syms = NULL;
	pid_t pid = c->pid;

	stop_child(c);
	assert_int_equal(ulp_symbols_open(pid, &syms), -ESRCH);
	assert_null(syms);
}

static int replaced_file_unprivileged(void *arg)
{
	pid_t pid = *(pid_t *)arg;
	struct ulp_symbols *syms;
	struct ulp_symbol sym;
	int ret = 0;

	if (can_open_map_files())
		return 1;
	/* An unprivileged ulpd never had the mapped file itself to cache. */
	ulp_elf_cache_flush();
	if (ulp_symbols_open(pid, &syms))
		return 2;
	/* Not named after the wrong file's SONAME (it has none): its file name. */
	if (!ulp_symbols_find_object(syms, "libcopy.so"))
		ret = 3;
	else if (ulp_symbols_resolve(syms, "libcopy.so", "ulp_fx_stripped_fn", 0, &sym) != -ESTALE)
		ret = 4;
	else if (!strstr(ulp_last_error(), "is not the one process") ||
		 !strstr(ulp_last_error(), "build-id"))
		ret = 5;
	ulp_symbols_close(syms);
	return ret;
}

/*
 * A library replaced under the process's feet: the child maps a copy of the
 * stripped library, then (in its own mount namespace) another file is
 * bind-mounted over that path.  The path now names a file with another
 * build-id than the mapped one, and its symbols must not be used.
 */
/* What test_replaced_file leaves behind, cleaned up even when it fails. */
static struct {
	pid_t pid;
	char dir[64], lib[128];
} replaced;

static int replaced_teardown(void **state)
{
	int ws;

	(void)state;
	if (replaced.pid > 0) {
		kill(replaced.pid, SIGKILL);
		waitpid(replaced.pid, &ws, 0);
	}
	if (replaced.lib[0])
		unlink(replaced.lib);
	if (replaced.dir[0])
		rmdir(replaced.dir);
	memset(&replaced, 0, sizeof(replaced));
	return 0;
}

static void test_replaced_file(void **state)
{
	char cmd[512];
	struct ulp_symbols *syms;
	struct pollfd pfd;
	char status = 0;
	uintptr_t fn = 0;
	int fds[2];
	pid_t pid;

	(void)state;
	strcpy(replaced.dir, "/tmp/ulp-test-replaced-XXXXXX");
	assert_non_null(mkdtemp(replaced.dir));
	snprintf(replaced.lib, sizeof(replaced.lib), "%s/libcopy.so", replaced.dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", FIXTURE_STRIPPED, replaced.lib);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pipe(fds), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		void *h = NULL;
		char c = 'R';

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			c = 'E';
		else if (!(h = dlopen(replaced.lib, RTLD_NOW)))
			c = 'D';
		else if (mount(FIXTURE_NONPIE, replaced.lib, NULL, MS_BIND, NULL) ||
			 drop_admin_caps())
			c = 'E';
		fn = h ? (uintptr_t)dlsym(h, "ulp_fx_stripped_fn") : 0;
		if (write(fds[1], &c, 1) != 1 || write(fds[1], &fn, sizeof(fn)) != sizeof(fn) ||
		    c != 'R')
			_exit(1);
		for (;;)
			pause();
	}
	replaced.pid = pid;
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1 || read(fds[0], &status, 1) != 1 ||
	    read(fds[0], &fn, sizeof(fn)) != sizeof(fn))
		status = 0;
	close(fds[0]);
	if (status == 'E')
		skip(); /* no permission for a private mount namespace */
	if (status != 'R')
		fail_msg("child could not set up (status '%c')", status ? status : '?');

	/* Privileged: the mapped file itself, through map_files. */
	if (can_open_map_files()) {
		syms = open_pid(pid);
		assert_non_null(ulp_symbols_find_object(syms, FIXTURE_STRIPPED_SONAME));
		assert_int_equal(
			resolve_ok(syms, FIXTURE_STRIPPED_SONAME, "ulp_fx_stripped_fn", 0, NULL),
			fn);
		ulp_symbols_close(syms);
	}
	/* Unprivileged: the path, which is refused after the build-id check. */
	assert_int_equal(unprivileged(replaced_file_unprivileged, &pid), 0);
}

int main(void)
{
	const struct CMUnitTest self_tests[] = {
		cmocka_unit_test(test_self_main_function),
		cmocka_unit_test(test_self_libc_function),
		cmocka_unit_test(test_self_ambiguous),
		cmocka_unit_test(test_self_sympos),
		cmocka_unit_test(test_self_unknown),
		cmocka_unit_test(test_self_object_and_name_at),
		cmocka_unit_test(test_self_build_ids),
		cmocka_unit_test(test_self_data_mappings),
		cmocka_unit_test(test_no_such_process),
		cmocka_unit_test(test_zombie),
		cmocka_unit_test_teardown(test_replaced_file, replaced_teardown),
	};
	const struct CMUnitTest child_tests[] = {
		cmocka_unit_test_setup_teardown(test_nonpie_main, child_setup, child_teardown),
		cmocka_unit_test_setup_teardown(test_nonpie_stripped_library, child_setup,
						child_teardown),
		cmocka_unit_test_setup_teardown(test_nonpie_deleted_exe, child_setup,
						child_teardown),
		cmocka_unit_test_setup_teardown(test_exited_child, child_setup, child_teardown),
	};
	int failed;

	failed = cmocka_run_group_tests_name("this process", self_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("non-PIE child", child_tests, group_setup,
					      group_teardown);
	return failed;
}
