/* SPDX-License-Identifier: MIT */
/*
 * Remote unwinding (libpatch/unwind.c, libpatch/unwind_tables.c).
 *
 * The pure parts are checked on built buffers and on this program's own
 * .eh_frame_hdr; the unwinder on a forked child stopped with ptrace in a
 * known call chain, whose return addresses the child records itself in
 * shared memory, against libunwind-ptrace's own accessors.  The child
 * then loads a module (this file built with ULP_UNWIND_FIXTURE_MODULE)
 * and stops again inside it: an ip in an object mapped after the
 * unwinder read the maps.  Every wait has a timeout; the child is killed
 * by its PID.
 */
#ifdef ULP_UNWIND_FIXTURE_MODULE

/* Calls back into the program, so the callback's frame has a caller here. */
void ulp_fx_unwind_call(void (*cb)(void))
{
	cb();
	/* Keeps the call a call, not a tail jump. */
	__asm__ volatile("" ::: "memory");
}

#else

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error.h"
#include "unwind.h"
#include "unwind_tables.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <libunwind-ptrace.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 12
#define MAX_FRAMES 256

/* ---- pure parts ---- */

static void test_read_encoded(void **state)
{
	const uint8_t buf[] = { 0xfe, 0xff, 0xf0, 0xff, 0xff, 0xff, 0x10, 0x00, 0x00,
				0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
	const uint8_t *p;
	uint64_t v;

	(void)state;
	p = buf;
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf), ULP_EH_PE_udata2, 0, 0, &v), 0);
	assert_int_equal(v, 0xfffe);
	assert_ptr_equal(p, buf + 2);
	p = buf;
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf), ULP_EH_PE_sdata2, 0, 0, &v), 0);
	assert_int_equal(v, (uint64_t)-2);
	/* pcrel: relative to the field's own address. */
	p = buf + 2;
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf),
					     ULP_EH_PE_pcrel | ULP_EH_PE_sdata4, 0x1000, 0, &v),
			 0);
	assert_int_equal(v, 0x1000 - 0x10);
	p = buf + 6;
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf),
					     ULP_EH_PE_datarel | ULP_EH_PE_udata4, 0, 0x5000, &v),
			 0);
	assert_int_equal(v, 0x5010);
	p = buf + 10;
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf), ULP_EH_PE_absptr, 0, 0, &v), 0);
	assert_int_equal(v, 0x0807060504030201ull);
	assert_ptr_equal(p, buf + sizeof(buf));
	/* Truncated, indirect, omitted, unknown size. */
	p = buf + 12;
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf), ULP_EH_PE_udata8, 0, 0, &v),
			 -EINVAL);
	assert_ptr_equal(p, buf + 12);
	assert_int_equal(
		ulp_eh_read_encoded(&p, buf + sizeof(buf), 0x80 | ULP_EH_PE_udata4, 0, 0, &v),
		-ENOTSUP);
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf), ULP_EH_PE_omit, 0, 0, &v),
			 -ENOTSUP);
	assert_int_equal(ulp_eh_read_encoded(&p, buf + sizeof(buf), 0x01, 0, 0, &v), -ENOTSUP);
}

static size_t put_hdr(uint8_t *b, uint8_t ver, uint8_t fenc, uint8_t cenc, uint8_t tenc,
		      int32_t frame, uint32_t count)
{
	b[0] = ver;
	b[1] = fenc;
	b[2] = cenc;
	b[3] = tenc;
	memcpy(b + 4, &frame, 4);
	memcpy(b + 8, &count, 4);
	return 12;
}

static void test_ehhdr_parse(void **state)
{
	const uint8_t pcrel4 = ULP_EH_PE_pcrel | ULP_EH_PE_sdata4;
	const uint8_t datarel4 = ULP_EH_PE_datarel | ULP_EH_PE_sdata4;
	struct ulp_ehhdr h;
	uint8_t b[ULP_EHHDR_MAX_HEADER];
	size_t n;

	(void)state;
	/* What GNU ld writes: eh_frame_ptr pcrel|sdata4, count udata4, table datarel|sdata4. */
	n = put_hdr(b, 1, pcrel4, ULP_EH_PE_udata4, datarel4, -0x2000, 77);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x7f0000001000ull, &h), 0);
	assert_int_equal(h.eh_frame, 0x7f0000001004ull - 0x2000);
	assert_int_equal(h.fde_count, 77);
	assert_int_equal(h.table, 0x7f000000100cull);
	/* datarel and udata4 eh_frame_ptr encodings. */
	n = put_hdr(b, 1, datarel4, ULP_EH_PE_udata4, datarel4, 0x40, 1);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x1000, &h), 0);
	assert_int_equal(h.eh_frame, 0x1040);
	n = put_hdr(b, 1, ULP_EH_PE_udata4, ULP_EH_PE_udata4, datarel4, 0x40, 0);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x1000, &h), 0);
	assert_int_equal(h.eh_frame, 0x40);
	assert_int_equal(h.fde_count, 0);
	/* Tables libunwind's search cannot read, or none: the caller falls back. */
	n = put_hdr(b, 2, pcrel4, ULP_EH_PE_udata4, datarel4, 0, 1);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x1000, &h), -ENOTSUP);
	n = put_hdr(b, 1, pcrel4, ULP_EH_PE_udata4, ULP_EH_PE_udata4, 0, 1);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x1000, &h), -ENOTSUP);
	n = put_hdr(b, 1, pcrel4, ULP_EH_PE_omit, ULP_EH_PE_omit, 0, 1);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x1000, &h), -ENOTSUP);
	n = put_hdr(b, 1, pcrel4, ULP_EH_PE_pcrel | ULP_EH_PE_udata4, datarel4, 0, 1);
	assert_int_equal(ulp_ehhdr_parse(b, n, 0x1000, &h), -ENOTSUP);
	/* Truncated. */
	n = put_hdr(b, 1, pcrel4, ULP_EH_PE_udata4, datarel4, 0, 1);
	assert_int_equal(ulp_ehhdr_parse(b, 3, 0x1000, &h), -EINVAL);
	assert_int_equal(ulp_ehhdr_parse(b, n - 1, 0x1000, &h), -EINVAL);
	/* An 8-byte count: the table follows 4 + 4 + 8 bytes of header. */
	b[2] = ULP_EH_PE_udata8;
	memset(b + 8, 0, 12);
	b[8] = 3;
	assert_int_equal(ulp_ehhdr_parse(b, 20, 0x1000, &h), 0);
	assert_int_equal(h.fde_count, 3);
	assert_int_equal(h.table, 0x1000 + 16);
}

struct self_hdr {
	uintptr_t fn;
	bool found;
	struct ulp_ehhdr h;
	uintptr_t hdr_addr;
};

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct self_hdr *s = arg;
	const ElfW(Phdr) *eh = NULL;
	bool mine = false;

	(void)size;
	for (size_t i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];

		if (p->p_type == PT_GNU_EH_FRAME)
			eh = p;
		if (p->p_type == PT_LOAD && s->fn >= info->dlpi_addr + p->p_vaddr &&
		    s->fn < info->dlpi_addr + p->p_vaddr + p->p_memsz)
			mine = true;
	}
	if (!mine || !eh)
		return 0;
	s->hdr_addr = info->dlpi_addr + eh->p_vaddr;
	s->found = ulp_ehhdr_parse((const void *)s->hdr_addr, eh->p_memsz, s->hdr_addr, &s->h) == 0;
	return 1;
}

/* The linker's table of this very program: sorted, and it covers our code. */
static void test_ehhdr_self(void **state)
{
	struct self_hdr s = { .fn = (uintptr_t)test_ehhdr_self };
	const int32_t *t;
	size_t lo = 0, hi;

	(void)state;
	dl_iterate_phdr(find_self, &s);
	assert_true(s.found);
	assert_true(s.h.fde_count > 10);
	assert_int_equal(s.h.table, s.hdr_addr + 12);
	t = (const int32_t *)s.h.table;
	for (size_t i = 1; i < s.h.fde_count; i++)
		assert_true(t[2 * i - 2] < t[2 * i]);
	/* The last entry starting at or before fn is fn's own FDE. */
	hi = s.h.fde_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if ((intptr_t)s.fn - (intptr_t)s.hdr_addr < t[2 * mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	assert_true(lo > 0);
	{
		uintptr_t fde = s.hdr_addr + t[2 * (lo - 1) + 1];
		uint32_t len;
		int32_t start;

		memcpy(&len, (const void *)fde, 4);
		memcpy(&start, (const void *)(fde + 8), 4); /* pcrel sdata4 */
		assert_true(fde + 8 + start <= s.fn);
		assert_true(len > 8);
	}
}

static void test_maps_parse(void **state)
{
	struct ulp_unw_map m;
	const char *name;

	(void)state;
	assert_int_equal(
		ulp_maps_parse_line(
			"7f1c2a228000-7f1c2a3a4000 r-xp 00028000 fe:01 1835 /usr/lib/x86_64-linux-gnu/libc.so.6\n",
			&m, NULL),
		0);
	assert_int_equal(m.start, 0x7f1c2a228000ull);
	assert_int_equal(m.end, 0x7f1c2a3a4000ull);
	assert_int_equal(m.offset, 0x28000);
	assert_int_equal(m.ino, 1835);
	assert_int_equal(m.dev, (0xfeull << 32) | 1);
	assert_int_equal(m.flags, ULP_MAP_R | ULP_MAP_X | ULP_MAP_OBJECT);
	assert_int_equal(m.obj, -1);
	assert_int_equal(ulp_maps_parse_line("7ffd5e1f0000-7ffd5e1f2000 r-xp 00000000 00:00 0 "
					     "                         [vdso]\n",
					     &m, NULL),
			 0);
	assert_int_equal(m.flags, ULP_MAP_R | ULP_MAP_X | ULP_MAP_OBJECT | ULP_MAP_VDSO);
	assert_int_equal(
		ulp_maps_parse_line("7f00000000-7f00001000 rwxp 00000000 00:00 0\n", &m, &name), 0);
	assert_int_equal(m.flags, ULP_MAP_R | ULP_MAP_W | ULP_MAP_X);
	assert_string_equal(name, ""); /* anonymous: nothing after the inode but the newline */
	assert_int_equal(ulp_maps_parse_line("7f0000-7f1000 r-xp 00001000 00:01 4242 /memfd:ulp "
					     "patch (deleted)\n",
					     &m, &name),
			 0);
	assert_int_equal(m.flags, ULP_MAP_R | ULP_MAP_X | ULP_MAP_OBJECT);
	assert_string_equal(name, "/memfd:ulp patch (deleted)\n");
	assert_int_equal(ulp_maps_parse_line("ffffffffff600000-ffffffffff601000 --xp 00000000 "
					     "00:00 0                  [vsyscall]\n",
					     &m, NULL),
			 0);
	assert_int_equal(m.flags, ULP_MAP_X);
	assert_int_equal(ulp_maps_parse_line("garbage\n", &m, NULL), -EINVAL);
	assert_int_equal(ulp_maps_parse_line("2000-1000 r-xp 0 00:00 0\n", &m, NULL), -EINVAL);
}

static void test_maps_find(void **state)
{
	const struct ulp_unw_map maps[] = {
		{ .start = 0x1000, .end = 0x3000, .flags = ULP_MAP_OBJECT, .ino = 7 },
		{ .start = 0x3000,
		  .end = 0x4000,
		  .flags = ULP_MAP_OBJECT | ULP_MAP_X,
		  .ino = 7,
		  .offset = 0x2000 },
		{ .start = 0x8000, .end = 0x9000, .flags = ULP_MAP_X },
		{ .start = 0x9000,
		  .end = 0xa000,
		  .flags = ULP_MAP_OBJECT,
		  .ino = 8,
		  .offset = 0x1000 },
		{ .start = 0xa000,
		  .end = 0xb000,
		  .flags = ULP_MAP_OBJECT | ULP_MAP_X,
		  .ino = 8,
		  .offset = 0x2000 },
		{ .start = 0xc000,
		  .end = 0xd000,
		  .flags = ULP_MAP_OBJECT | ULP_MAP_X | ULP_MAP_VDSO },
	};
	const size_t n = sizeof(maps) / sizeof(maps[0]);

	(void)state;
	assert_int_equal(ulp_maps_find(maps, 0, 0x1000), -1);
	assert_int_equal(ulp_maps_find(maps, n, 0), -1);
	assert_int_equal(ulp_maps_find(maps, n, 0xfff), -1);
	assert_int_equal(ulp_maps_find(maps, n, 0x1000), 0);
	assert_int_equal(ulp_maps_find(maps, n, 0x2fff), 0);
	assert_int_equal(ulp_maps_find(maps, n, 0x3000), 1);
	assert_int_equal(ulp_maps_find(maps, n, 0x3fff), 1);
	assert_int_equal(ulp_maps_find(maps, n, 0x4000), -1);
	assert_int_equal(ulp_maps_find(maps, n, 0x7fff), -1);
	assert_int_equal(ulp_maps_find(maps, n, 0x8000), 2);
	assert_int_equal(ulp_maps_find(maps, n, 0xcfff), 5);
	assert_int_equal(ulp_maps_find(maps, n, 0xd000), -1);
	assert_int_equal(ulp_maps_find(maps, n, UINT64_MAX), -1);
	assert_int_equal(ulp_maps_find(maps, 1, 0x1000), 0);
	assert_int_equal(ulp_maps_find(maps, 1, 0x3000), -1);

	assert_int_equal(ulp_maps_object_base(maps, n, 1), 0);
	assert_int_equal(ulp_maps_object_base(maps, n, 0), 0);
	assert_int_equal(ulp_maps_object_base(maps, n, 2), -1); /* anonymous */
	assert_int_equal(ulp_maps_object_base(maps, n, 4), -1); /* no offset-0 mapping */
	assert_int_equal(ulp_maps_object_base(maps, n, 5), 5); /* the vDSO */
	assert_int_equal(ulp_maps_object_base(maps, n, n), -1);
}

/* ---- a stopped child ---- */

struct shared {
	uint64_t rets[DEPTH + 1]; /* rets[n]: return address of chain(n) */
	uint64_t module_ret; /* return address of module_cb, in the module */
	uint64_t nocfi_ret; /* return address of park_again, in ulp_test_nocfi_call */
};

static struct shared *sh;
static int ready_fd = -1, cmd_fd = -1;
static pid_t child = -1;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Tell the parent we are in place and block until it says go on. */
static __attribute__((noinline)) void park(void)
{
	char c = 'r';

	if (write(ready_fd, &c, 1) != 1 || read(cmd_fd, &c, 1) != 1)
		_exit(3);
}

static __attribute__((noinline)) void module_cb(void)
{
	sh->module_ret = (uint64_t)__builtin_return_address(0);
	park();
	__asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void park_again(void)
{
	sh->nocfi_ret = (uint64_t)__builtin_return_address(0);
	park();
	__asm__ volatile("" ::: "memory");
}

/* Calls fn with no CFI at all, as hand-written assembly or JIT code may. */
void ulp_test_nocfi_call(void (*fn)(void));
__asm__(".text\n"
	".globl ulp_test_nocfi_call\n"
	"ulp_test_nocfi_call:\n"
	"	sub $8, %rsp\n"
	"	call *%rdi\n"
	"	add $8, %rsp\n"
	"	ret\n");

static __attribute__((noinline)) int chain(int n)
{
	int r = 0;

	sh->rets[n] = (uint64_t)__builtin_return_address(0);
	if (n == 0) {
		void (*call)(void (*)(void));
		void *mod;

		park();
		/* Second stop: inside an object loaded after the first unwind. */
		mod = dlopen(FIXTURE_UNWIND_MOD, RTLD_NOW);
		call = mod ? (void (*)(void (*)(void)))dlsym(mod, "ulp_fx_unwind_call") : NULL;
		if (!call)
			_exit(4);
		call(module_cb);
		/* Third stop: below a frame without unwind information. */
		ulp_test_nocfi_call(park_again);
	} else {
		r = chain(n - 1);
	}
	__asm__ volatile("" : "+r"(r)::"memory");
	return r + 1;
}

static int wait_ready(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, 10000) != 1 || read(fd, &c, 1) != 1)
		return -1;
	return 0;
}

static int wait_stop(pid_t pid)
{
	uint64_t end = now_ms() + 10000;
	int status;

	while (now_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG | __WALL);

		if (r == pid)
			return WIFSTOPPED(status) ? 0 : -1;
		if (r < 0)
			return -1;
		usleep(1000);
	}
	return -1;
}

static int stop_child(struct user_regs_struct *regs)
{
	if (ptrace(PTRACE_INTERRUPT, child, 0, 0) < 0 || wait_stop(child) < 0 ||
	    ptrace(PTRACE_GETREGS, child, 0, regs) < 0)
		return -1;
	return 0;
}

static int setup_child(void **state)
{
	int ready[2], cmd[2];

	(void)state;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || pipe(ready) < 0 || pipe(cmd) < 0)
		return -1;
	child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(cmd[1]);
		ready_fd = ready[1];
		cmd_fd = cmd[0];
		chain(DEPTH);
		_exit(0);
	}
	close(ready[1]);
	close(cmd[0]);
	ready_fd = ready[0];
	cmd_fd = cmd[1];
	if (wait_ready(ready_fd) < 0 || ptrace(PTRACE_SEIZE, child, 0, 0) < 0)
		return -1;
	return 0;
}

static int teardown_child(void **state)
{
	(void)state;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, __WALL);
		child = -1;
	}
	close(ready_fd);
	close(cmd_fd);
	munmap(sh, sizeof(*sh));
	return 0;
}

/* The same walk with libunwind-ptrace as shipped. */
static size_t upt_unwind(uint64_t *ips)
{
	unw_addr_space_t as = unw_create_addr_space(&_UPT_accessors, 0);
	void *upt = _UPT_create(child);
	unw_cursor_t c;
	size_t n = 0;

	assert_non_null(as);
	assert_non_null(upt);
	assert_int_equal(unw_init_remote(&c, as, upt), 0);
	for (;;) {
		unw_word_t ip;
		int ret;

		assert_true(n < MAX_FRAMES);
		unw_get_reg(&c, UNW_REG_IP, &ip);
		ips[n++] = ip;
		ret = unw_step(&c);
		if (ret <= 0) {
			assert_int_equal(ret, 0);
			break;
		}
	}
	_UPT_destroy(upt);
	unw_destroy_addr_space(as);
	return n;
}

/* Every wanted address appears, innermost first, and the walk ends at the outermost frame. */
static void assert_has_in_order(const uint64_t *ips, size_t n, const uint64_t *want, size_t nw)
{
	size_t f = 0;

	for (size_t w = 0; w < nw; w++) {
		while (f < n && ips[f] != want[w])
			f++;
		if (f == n)
			fail_msg("address %zu (0x%llx) missing from the unwound stack", w,
				 (unsigned long long)want[w]);
		f++;
	}
}

static void test_unwind_child(void **state)
{
	uint64_t ips[MAX_FRAMES], ref[MAX_FRAMES], want[DEPTH + 2];
	struct ulp_unwind_stats st;
	struct user_regs_struct regs;
	struct ulp_unwinder *u;
	size_t n = 0, nref, first_n;
	char go = 'g';

	(void)state;
	assert_int_equal(stop_child(&regs), 0);
	assert_int_equal(ulp_unwinder_create(child, &u), 0);
	assert_int_equal(ulp_unwind_thread(u, child, &regs, ips, MAX_FRAMES, &n), 0);
	for (int i = 0; i <= DEPTH; i++)
		want[i] = sh->rets[i];
	assert_has_in_order(ips, n, want, DEPTH + 1);
	nref = upt_unwind(ref);
	assert_int_equal(n, nref);
	assert_memory_equal(ips, ref, n * sizeof(*ips));
	first_n = n;

	/* Warm: nothing re-read but the stack, and the same walk. */
	assert_int_equal(ulp_unwind_thread(u, child, &regs, ips, MAX_FRAMES, &n), 0);
	assert_int_equal(n, nref);
	assert_memory_equal(ips, ref, n * sizeof(*ips));
	ulp_unwinder_get_stats(u, &st);
	assert_int_equal(st.unwinds, 2);
	assert_int_equal(st.maps_reads, 1);
	assert_int_equal(st.fallback_lookups, 0);
	assert_true(st.table_lookups >= (uint64_t)DEPTH / 2);

	/* Invalidated: everything re-read, the same walk. */
	ulp_unwinder_invalidate(u);
	assert_int_equal(ulp_unwind_thread(u, child, &regs, ips, MAX_FRAMES, &n), 0);
	assert_int_equal(n, nref);
	assert_memory_equal(ips, ref, n * sizeof(*ips));
	ulp_unwinder_get_stats(u, &st);
	assert_int_equal(st.maps_reads, 2);

	/* Too small a buffer: an unreliable walk, never a success. */
	assert_int_equal(ulp_unwind_thread(u, child, &regs, ips, 3, &n), -EAGAIN);
	assert_int_equal(n, 3);

	/* Let it load the module and stop in module_cb, called from the module. */
	assert_int_equal(ptrace(PTRACE_CONT, child, 0, 0), 0);
	assert_int_equal(write(cmd_fd, &go, 1), 1);
	assert_int_equal(wait_ready(ready_fd), 0);
	assert_int_equal(stop_child(&regs), 0);
	assert_int_equal(ulp_unwind_thread(u, child, &regs, ips, MAX_FRAMES, &n), 0);
	ulp_unwinder_get_stats(u, &st);
	assert_int_equal(st.maps_reads, 3); /* the module's ip was in no known mapping */
	assert_int_equal(st.fallback_lookups, 0);
	want[0] = sh->module_ret;
	for (int i = 0; i <= DEPTH; i++)
		want[i + 1] = sh->rets[i];
	assert_has_in_order(ips, n, want, DEPTH + 2);
	assert_int_equal(n, first_n + 2); /* + module_cb, + ulp_fx_unwind_call */
	nref = upt_unwind(ref);
	assert_int_equal(n, nref);
	assert_memory_equal(ips, ref, n * sizeof(*ips));

	/*
	 * Stopped under a frame without unwind information: libunwind would
	 * guess past it and may skip a caller (a busy function unseen), so the
	 * walk is unreliable and never a success.
	 */
	assert_int_equal(ptrace(PTRACE_CONT, child, 0, 0), 0);
	assert_int_equal(write(cmd_fd, &go, 1), 1);
	assert_int_equal(wait_ready(ready_fd), 0);
	assert_int_equal(stop_child(&regs), 0);
	assert_int_equal(ulp_unwind_thread(u, child, &regs, ips, MAX_FRAMES, &n), -EAGAIN);
	assert_true(n >= 1 && ips[n - 1] == sh->nocfi_ret);
	ulp_unwinder_destroy(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_encoded),
		cmocka_unit_test(test_ehhdr_parse),
		cmocka_unit_test(test_ehhdr_self),
		cmocka_unit_test(test_maps_parse),
		cmocka_unit_test(test_maps_find),
		cmocka_unit_test_setup_teardown(test_unwind_child, setup_child, teardown_child),
	};

	/* The child dies with us; nothing here may wait forever. */
	alarm(50);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
