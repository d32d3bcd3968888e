/* SPDX-License-Identifier: MIT */
#include "unwind.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <libunwind-ptrace.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "error.h"
#include "unwind_tables.h"

/*
 * Exported by libunwind (as _Ux86_64_dwarf_search_unwind_table) but not
 * declared by its headers: the binary search of an .eh_frame_hdr table
 * through our accessors, and the FDE/CIE decoding.
 */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
					      unw_dyn_info_t *di, unw_proc_info_t *pi,
					      int need_unwind_info, void *arg);

#define ULP_PAGE 4096u
/* Stack and other writable pages, refilled for every unwind. */
#define ULP_STACK_PAGES 16
/* Pages of read-only object mappings (headers, unwind tables), kept. */
#define ULP_OBJECT_PAGES 128
#define ULP_MAX_PHDRS 128

struct ulp_unwind_page {
	uint64_t addr; /* page address; 0 = empty */
	unsigned char data[ULP_PAGE];
};

enum ulp_obj_state {
	ULP_OBJ_UNRESOLVED,
	ULP_OBJ_TABLE, /* di describes its .eh_frame_hdr table */
	ULP_OBJ_FALLBACK, /* no usable table: libunwind-ptrace looks */
};

struct ulp_unw_obj {
	uint64_t base; /* where its ELF header is mapped */
	enum ulp_obj_state state;
	unw_dyn_info_t di;
};

struct ulp_unwinder {
	pid_t pid;
	unw_addr_space_t as;
	void *upt; /* libunwind-ptrace's context, for the fallback lookup */
	const struct user_regs_struct *regs; /* of the thread being unwound */
	/* Executable and object-backed mappings, by address; NULL = not read. */
	struct ulp_unw_map *maps;
	size_t nr_maps;
	struct ulp_unw_obj *objs;
	size_t nr_objs;
	bool reread; /* maps were re-read during this unwind */
	/*
	 * A lookup found no unwind information: libunwind then guesses (frame
	 * pointers, or "the outermost frame") and can skip frames, so a busy
	 * function would go unseen.  Such a stack is unreliable, as the
	 * kernel's livepatch treats one.  Warm steps make no lookup (the
	 * register-state cache holds only what unwind information gave).
	 */
	bool no_info;
	struct ulp_unwind_stats stats;
	struct ulp_unwind_page *object_pages; /* ULP_OBJECT_PAGES */
	struct ulp_unwind_page stack_pages[ULP_STACK_PAGES];
};

/*
 * libunwind-ptrace's find_proc_info, our fallback, calls back into the
 * address space's accessors with its own context as the argument, so the
 * accessors find ours here rather than through `arg`.
 */
static __thread struct ulp_unwinder *ulp_unw_current;

static void ulp_unw_forget_code(struct ulp_unwinder *u)
{
	free(u->maps);
	u->maps = NULL;
	u->nr_maps = 0;
	free(u->objs);
	u->objs = NULL;
	u->nr_objs = 0;
	for (size_t i = 0; i < ULP_OBJECT_PAGES; i++)
		u->object_pages[i].addr = 0;
}

static int ulp_unw_add_object(struct ulp_unwinder *u, uint64_t base)
{
	struct ulp_unw_obj *objs;

	for (size_t i = 0; i < u->nr_objs; i++)
		if (u->objs[i].base == base)
			return (int)i;
	objs = realloc(u->objs, (u->nr_objs + 1) * sizeof(*objs));
	if (!objs)
		return -1;
	u->objs = objs;
	memset(&objs[u->nr_objs], 0, sizeof(objs[0]));
	objs[u->nr_objs].base = base;
	objs[u->nr_objs].state = ULP_OBJ_UNRESOLVED;
	return (int)u->nr_objs++;
}

/*
 * Read the target's mappings.  Only executable and object-backed ones are
 * kept: the first to find code, the others to find ELF headers and to know
 * which pages hold constant data.
 */
static int ulp_unw_read_maps(struct ulp_unwinder *u)
{
	struct ulp_unw_map *maps = NULL, m;
	size_t nr = 0, cap = 0, len = 0;
	char path[64], *line = NULL;
	FILE *f;

	ulp_unw_forget_code(u);
	u->stats.maps_reads++;
	snprintf(path, sizeof(path), "/proc/%d/maps", u->pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &len, f) > 0) {
		if (ulp_maps_parse_line(line, &m, NULL) < 0 ||
		    !(m.flags & (ULP_MAP_X | ULP_MAP_OBJECT)))
			continue;
		if (nr == cap) {
			struct ulp_unw_map *n;

			cap = cap ? 2 * cap : 64;
			n = realloc(maps, cap * sizeof(*n));
			if (!n) {
				free(maps);
				free(line);
				fclose(f);
				return -ENOMEM;
			}
			maps = n;
		}
		maps[nr++] = m;
	}
	free(line);
	fclose(f);
	u->maps = maps;
	u->nr_maps = nr;
	for (size_t i = 0; i < nr; i++) {
		long base;

		if (!(maps[i].flags & ULP_MAP_X) || !(maps[i].flags & ULP_MAP_OBJECT))
			continue;
		base = ulp_maps_object_base(maps, nr, i);
		if (base >= 0)
			maps[i].obj = ulp_unw_add_object(u, maps[base].start);
	}
	return 0;
}

/*
 * Pages of non-writable object mappings (ELF headers, .eh_frame_hdr,
 * .eh_frame, code) only change when code is patched or objects come and
 * go, which is what ulp_unwinder_invalidate() is for; everything else may
 * change whenever a thread runs.
 */
static bool ulp_unw_page_is_constant(const struct ulp_unwinder *u, uint64_t page)
{
	long i = ulp_maps_find(u->maps, u->nr_maps, page);

	return i >= 0 && (u->maps[i].flags & ULP_MAP_OBJECT) && !(u->maps[i].flags & ULP_MAP_W);
}

static const unsigned char *ulp_unw_page(struct ulp_unwinder *u, uint64_t page)
{
	struct ulp_unwind_page *st = &u->stack_pages[(page / ULP_PAGE) % ULP_STACK_PAGES];
	struct ulp_unwind_page *ob = &u->object_pages[(page / ULP_PAGE) % ULP_OBJECT_PAGES];
	struct ulp_unwind_page *pg;
	struct iovec local, remote;

	if (page == 0)
		return NULL;
	if (st->addr == page)
		return st->data;
	if (ob->addr == page)
		return ob->data;
	pg = ulp_unw_page_is_constant(u, page) ? ob : st;
	local.iov_base = pg->data;
	local.iov_len = ULP_PAGE;
	remote.iov_base = (void *)page;
	remote.iov_len = ULP_PAGE;
	u->stats.page_reads++;
	if (process_vm_readv(u->pid, &local, 1, &remote, 1, 0) != (ssize_t)ULP_PAGE) {
		pg->addr = 0;
		return NULL;
	}
	pg->addr = page;
	return pg->data;
}

static int ulp_unw_read(struct ulp_unwinder *u, uint64_t addr, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		uint64_t page = addr & ~(uint64_t)(ULP_PAGE - 1);
		size_t off = addr - page, n = ULP_PAGE - off < len ? ULP_PAGE - off : len;
		const unsigned char *data = ulp_unw_page(u, page);

		if (!data)
			return -EFAULT;
		memcpy(out, data + off, n);
		out += n;
		addr += n;
		len -= n;
	}
	return 0;
}

/*
 * Find an object's .eh_frame_hdr from its program headers, read from the
 * target's memory (the first loadable segment maps the ELF header, and
 * this also works for the vDSO and for objects loaded from a memfd, whose
 * files cannot be opened by path).
 */
static void ulp_unw_resolve(struct ulp_unwinder *u, struct ulp_unw_obj *o)
{
	uint64_t lo = UINT64_MAX, hi = 0, bias, hdr_addr;
	unsigned char hdr_buf[ULP_EHHDR_MAX_HEADER];
	const Elf64_Phdr *eh_frame = NULL;
	Elf64_Phdr ph[ULP_MAX_PHDRS];
	struct ulp_ehhdr hdr;
	Elf64_Ehdr eh;
	size_t hdr_len;

	o->state = ULP_OBJ_FALLBACK;
	if (ulp_unw_read(u, o->base, &eh, sizeof(eh)) < 0)
		return;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ULP_MAX_PHDRS ||
	    ulp_unw_read(u, o->base + eh.e_phoff, ph, eh.e_phnum * sizeof(ph[0])) < 0)
		return;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_GNU_EH_FRAME)
			eh_frame = &ph[i];
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_vaddr < lo)
			lo = ph[i].p_vaddr;
		if (ph[i].p_vaddr + ph[i].p_memsz > hi)
			hi = ph[i].p_vaddr + ph[i].p_memsz;
	}
	if (!eh_frame || lo >= hi || eh_frame->p_memsz < 4)
		return;
	/* The loader maps the lowest segment at bias + its page. */
	bias = o->base - (lo & ~(uint64_t)(ULP_PAGE - 1));
	hdr_addr = bias + eh_frame->p_vaddr;
	hdr_len = eh_frame->p_memsz < sizeof(hdr_buf) ? eh_frame->p_memsz : sizeof(hdr_buf);
	if (ulp_unw_read(u, hdr_addr, hdr_buf, hdr_len) < 0 ||
	    ulp_ehhdr_parse(hdr_buf, hdr_len, hdr_addr, &hdr) < 0)
		return;
	if (hdr.table + hdr.fde_count * 8 > hdr_addr + eh_frame->p_memsz)
		return; /* the table would overrun its segment: not ours to read */
	o->di.start_ip = bias + lo;
	o->di.end_ip = bias + hi;
	o->di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
	/* Table entries are relative to the header; ips too (IP_OFFSET is not used). */
	o->di.u.rti.segbase = hdr_addr;
	o->di.u.rti.table_data = hdr.table;
	/* Counted in words: two int32 per entry. */
	o->di.u.rti.table_len = hdr.fde_count * 8 / sizeof(unw_word_t);
	o->state = ULP_OBJ_TABLE;
}

static int ulp_unw_lookup(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need,
			  void *arg)
{
	struct ulp_unwinder *u = ulp_unw_current;
	struct ulp_unw_obj *o;
	long i;

	(void)arg;
	i = ulp_maps_find(u->maps, u->nr_maps, ip);
	if (i < 0 && !u->reread) {
		/* Mapped since we looked, e.g. a dlopen; once per unwind at most. */
		u->reread = true;
		ulp_unw_read_maps(u);
		i = ulp_maps_find(u->maps, u->nr_maps, ip);
	}
	if (i < 0 || !(u->maps[i].flags & ULP_MAP_X) || !(u->maps[i].flags & ULP_MAP_OBJECT))
		return -UNW_ENOINFO; /* not code, or code without an object (JIT, slots) */
	if (u->maps[i].obj < 0) {
		u->stats.fallback_lookups++;
		return _UPT_find_proc_info(as, ip, pi, need, u->upt);
	}
	o = &u->objs[u->maps[i].obj];
	if (o->state == ULP_OBJ_UNRESOLVED)
		ulp_unw_resolve(u, o);
	if (o->state != ULP_OBJ_TABLE) {
		u->stats.fallback_lookups++;
		return _UPT_find_proc_info(as, ip, pi, need, u->upt);
	}
	if (ip < o->di.start_ip || ip >= o->di.end_ip)
		return -UNW_ENOINFO;
	u->stats.table_lookups++;
	return UNW_OBJ(dwarf_search_unwind_table)(as, ip, &o->di, pi, need, u);
}

/*
 * libunwind frees the unwind info of table lookups itself (from its own
 * pool, whether we or the fallback found it) and calls this only for
 * procedures registered in the target's dynamic-info list, which we never
 * report: there is nothing to free, and free() would be wrong for pool
 * memory.
 */
static int ulp_unw_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need,
				  void *arg)
{
	int ret = ulp_unw_lookup(as, ip, pi, need, arg);

	if (ret == -UNW_ENOINFO)
		ulp_unw_current->no_info = true;
	return ret;
}

static void ulp_unw_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
	(void)as, (void)pi, (void)arg;
}

/* Only libunwind itself fills that list, and targets do not link it for us. */
static int ulp_unw_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
	(void)as, (void)addr, (void)arg;
	return -UNW_ENOINFO;
}

static int ulp_unw_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
			      void *arg)
{
	struct ulp_unwinder *u = ulp_unw_current;
	uint64_t page = addr & ~(uint64_t)(ULP_PAGE - 1);
	const unsigned char *data;

	(void)as, (void)arg;
	if (write)
		return -UNW_EINVAL; /* unwinding never needs to write */
	/* libunwind reads every byte of the tables through here: keep it short. */
	if (addr - page <= ULP_PAGE - sizeof(*val)) {
		data = ulp_unw_page(u, page);
		if (!data)
			return -UNW_EINVAL;
		memcpy(val, data + (addr - page), sizeof(*val));
		return 0;
	}
	return ulp_unw_read(u, addr, val, sizeof(*val)) < 0 ? -UNW_EINVAL : 0;
}

static int ulp_unw_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
			      void *arg)
{
	const struct user_regs_struct *r = ulp_unw_current->regs;

	(void)as, (void)arg;
	if (write)
		return -UNW_EREADONLYREG;
	switch (reg) {
	case UNW_X86_64_RAX:
		*val = r->rax;
		break;
	case UNW_X86_64_RDX:
		*val = r->rdx;
		break;
	case UNW_X86_64_RCX:
		*val = r->rcx;
		break;
	case UNW_X86_64_RBX:
		*val = r->rbx;
		break;
	case UNW_X86_64_RSI:
		*val = r->rsi;
		break;
	case UNW_X86_64_RDI:
		*val = r->rdi;
		break;
	case UNW_X86_64_RBP:
		*val = r->rbp;
		break;
	case UNW_X86_64_RSP:
		*val = r->rsp;
		break;
	case UNW_X86_64_R8:
		*val = r->r8;
		break;
	case UNW_X86_64_R9:
		*val = r->r9;
		break;
	case UNW_X86_64_R10:
		*val = r->r10;
		break;
	case UNW_X86_64_R11:
		*val = r->r11;
		break;
	case UNW_X86_64_R12:
		*val = r->r12;
		break;
	case UNW_X86_64_R13:
		*val = r->r13;
		break;
	case UNW_X86_64_R14:
		*val = r->r14;
		break;
	case UNW_X86_64_R15:
		*val = r->r15;
		break;
	case UNW_X86_64_RIP:
		*val = r->rip;
		break;
	default:
		return -UNW_EBADREG;
	}
	return 0;
}

static int ulp_unw_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
				void *arg)
{
	(void)as, (void)reg, (void)val, (void)write, (void)arg;
	return -UNW_EBADREG;
}

static int ulp_unw_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
	(void)as, (void)c, (void)arg;
	return -UNW_EINVAL;
}

static int ulp_unw_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
				 unw_word_t *off, void *arg)
{
	(void)arg;
	return _UPT_get_proc_name(as, addr, buf, len, off, ulp_unw_current->upt);
}

static unw_accessors_t ulp_unw_accessors = {
	.find_proc_info = ulp_unw_find_proc_info,
	.put_unwind_info = ulp_unw_put_unwind_info,
	.get_dyn_info_list_addr = ulp_unw_get_dyn_info_list_addr,
	.access_mem = ulp_unw_access_mem,
	.access_reg = ulp_unw_access_reg,
	.access_fpreg = ulp_unw_access_fpreg,
	.resume = ulp_unw_resume,
	.get_proc_name = ulp_unw_get_proc_name,
};

static size_t ulp_unw_tls_size;

static int ulp_unw_tls_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *name = arg;

	(void)size;
	if (!info->dlpi_name || strcmp(info->dlpi_name, name) != 0)
		return 0;
	for (size_t i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_TLS)
			ulp_unw_tls_size = info->dlpi_phdr[i].p_memsz;
	return 1;
}

static unw_caching_policy_t ulp_unw_policy = UNW_CACHE_GLOBAL;

/*
 * UNW_CACHE_GLOBAL guards every lookup in libunwind's register-state cache
 * with a lock that blocks all signals: two sigprocmask calls per frame,
 * most of what a warm frame costs.  UNW_CACHE_PER_THREAD takes no lock and,
 * when libunwind is built without --enable-per-thread-cache (the default,
 * and Debian's build), keeps using the address space's own cache: right for
 * us, as an unwinder is used by one thread at a time.  Built with that
 * option it would instead use one thread-local cache keyed by ip alone and
 * shared by every address space of the thread, mixing processes; such a
 * build carries that cache (tens of KB) in its TLS segment, so look.
 */
static void ulp_unw_pick_policy(void)
{
	Dl_info info;

	if (!dladdr((void *)unw_init_remote, &info) || !info.dli_fname)
		return;
	ulp_unw_tls_size = SIZE_MAX;
	dl_iterate_phdr(ulp_unw_tls_cb, (void *)info.dli_fname);
	if (ulp_unw_tls_size < 1024)
		ulp_unw_policy = UNW_CACHE_PER_THREAD;
}

int ulp_unwinder_create(pid_t pid, struct ulp_unwinder **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct ulp_unwinder *u = calloc(1, sizeof(*u));

	if (!u)
		return ulp_errorf(-ENOMEM, "out of memory");
	pthread_once(&once, ulp_unw_pick_policy);
	u->pid = pid;
	u->object_pages = calloc(ULP_OBJECT_PAGES, sizeof(*u->object_pages));
	u->upt = _UPT_create(pid);
	u->as = unw_create_addr_space(&ulp_unw_accessors, 0);
	if (!u->object_pages || !u->upt || !u->as) {
		ulp_unwinder_destroy(u);
		return ulp_errorf(-ENOMEM, "cannot create an unwinder for process %d", pid);
	}
	/* Register states keyed by ip: a hot function's frames are decoded once. */
	unw_set_caching_policy(u->as, ulp_unw_policy);
	*out = u;
	return 0;
}

void ulp_unwinder_destroy(struct ulp_unwinder *u)
{
	if (!u)
		return;
	if (u->as)
		unw_destroy_addr_space(u->as);
	if (u->upt)
		_UPT_destroy(u->upt);
	if (u->object_pages)
		ulp_unw_forget_code(u);
	free(u->object_pages);
	free(u);
}

void ulp_unwinder_invalidate(struct ulp_unwinder *u)
{
	ulp_unw_forget_code(u);
	/* Register states are keyed by ip: code at an ip may have changed. */
	unw_flush_cache(u->as, 0, 0);
}

void ulp_unwinder_get_stats(const struct ulp_unwinder *u, struct ulp_unwind_stats *out)
{
	*out = u->stats;
}

int ulp_unwind_thread(struct ulp_unwinder *u, pid_t tid, const struct user_regs_struct *regs,
		      uint64_t *ips, size_t max, size_t *nr)
{
	unw_cursor_t cursor;
	size_t n = 0;
	int ret;

	/* Another thread, or the same one after running: its stack is new. */
	for (size_t i = 0; i < ULP_STACK_PAGES; i++)
		u->stack_pages[i].addr = 0;
	u->stats.unwinds++;
	u->reread = false;
	if (!u->maps) {
		/*
		 * Without the maps every page counts as a stack page and
		 * lookups fall back on libunwind-ptrace: slow, still right.
		 */
		u->reread = true;
		ulp_unw_read_maps(u);
	}
	u->regs = regs;
	ulp_unw_current = u;
	ret = unw_init_remote(&cursor, u->as, u);
	if (ret < 0)
		return ulp_errorf(-EAGAIN, "cannot start unwinding thread %d (%d)", tid, ret);
	for (;;) {
		unw_word_t ip;

		if (n == max) {
			*nr = n;
			return ulp_errorf(-EAGAIN, "stack of thread %d deeper than %zu frames", tid,
					  max);
		}
		unw_get_reg(&cursor, UNW_REG_IP, &ip);
		ips[n++] = ip;
		u->no_info = false;
		ret = unw_step(&cursor);
		if (u->no_info) {
			*nr = n;
			return ulp_errorf(-EAGAIN,
					  "no unwind information for code at 0x%llx in thread %d",
					  (unsigned long long)ip, tid);
		}
		if (ret == 0)
			break;
		if (ret < 0) {
			*nr = n;
			return ulp_errorf(-EAGAIN, "unwinding thread %d stopped at 0x%llx (%d)",
					  tid, (unsigned long long)ip, ret);
		}
	}
	*nr = n;
	return 0;
}
