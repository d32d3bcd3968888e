/* SPDX-License-Identifier: MIT */
#include "unwind.h"

#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "error.h"

#define ULP_UNWIND_PAGES 16
#define ULP_PAGE 4096u

struct ulp_unwind_page {
	uint64_t addr; /* page address; 0 = empty */
	unsigned char data[ULP_PAGE];
};

struct ulp_unwinder {
	pid_t pid;
	unw_addr_space_t as;
	void *upt; /* libunwind-ptrace's per-process context */
	const struct user_regs_struct *regs; /* of the thread being unwound */
	struct ulp_unwind_page pages[ULP_UNWIND_PAGES];
};

/*
 * libunwind-ptrace's find_proc_info calls back into the address space's
 * accessors with its own context as the argument, so the accessors find
 * ours here rather than through `arg`.
 */
static __thread struct ulp_unwinder *ulp_unw_current;

static int ulp_unw_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need,
				  void *arg)
{
	struct ulp_unwinder *u = ulp_unw_current;

	(void)arg;

	return _UPT_find_proc_info(as, ip, pi, need, u->upt);
}

static void ulp_unw_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
	(void)arg;
	struct ulp_unwinder *u = ulp_unw_current;

	(void)arg;

	_UPT_put_unwind_info(as, pi, u->upt);
}

static int ulp_unw_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
	struct ulp_unwinder *u = ulp_unw_current;

	(void)arg;

	return _UPT_get_dyn_info_list_addr(as, addr, u->upt);
}

static int ulp_unw_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
			      void *arg)
{
	struct ulp_unwinder *u = ulp_unw_current;

	(void)arg;
	uint64_t page = addr & ~(uint64_t)(ULP_PAGE - 1);
	struct ulp_unwind_page *pg = &u->pages[(page / ULP_PAGE) % ULP_UNWIND_PAGES];
	size_t off = addr - page;

	(void)as;
	if (write)
		return -UNW_EINVAL; /* unwinding never needs to write */
	if (off + sizeof(*val) > ULP_PAGE) {
		/* A word straddling two pages: two cached reads. */
		unw_word_t lo, hi;
		size_t first = ULP_PAGE - off;

		if (ulp_unw_access_mem(as, page + ULP_PAGE - sizeof(lo), &lo, 0, arg) ||
		    ulp_unw_access_mem(as, page + ULP_PAGE, &hi, 0, arg))
			return -UNW_EINVAL;
		memcpy(val, (char *)&lo + sizeof(lo) - first, first);
		memcpy((char *)val + first, &hi, sizeof(*val) - first);
		return 0;
	}
	if (pg->addr != page || page == 0) {
		struct iovec local = { .iov_base = pg->data, .iov_len = ULP_PAGE };
		struct iovec remote = { .iov_base = (void *)page, .iov_len = ULP_PAGE };

		if (process_vm_readv(u->pid, &local, 1, &remote, 1, 0) != (ssize_t)ULP_PAGE) {
			pg->addr = 0;
			return -UNW_EINVAL;
		}
		pg->addr = page;
	}
	memcpy(val, pg->data + off, sizeof(*val));
	return 0;
}

static int ulp_unw_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
			      void *arg)
{
	struct ulp_unwinder *u = ulp_unw_current;

	(void)arg;
	const struct user_regs_struct *r = u->regs;

	(void)as;
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
	struct ulp_unwinder *u = ulp_unw_current;

	(void)arg;

	return _UPT_get_proc_name(as, addr, buf, len, off, u->upt);
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

int ulp_unwinder_create(pid_t pid, struct ulp_unwinder **out)
{
	struct ulp_unwinder *u = calloc(1, sizeof(*u));

	if (!u)
		return ulp_errorf(-ENOMEM, "out of memory");
	u->pid = pid;
	u->upt = _UPT_create(pid);
	u->as = unw_create_addr_space(&ulp_unw_accessors, 0);
	if (!u->upt || !u->as) {
		ulp_unwinder_destroy(u);
		return ulp_errorf(-ENOMEM, "cannot create an unwinder for process %d", pid);
	}
	/* Register states keyed by ip: a hot function's frames are decoded once. */
	unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
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
	free(u);
}

int ulp_unwind_thread(struct ulp_unwinder *u, pid_t tid, const struct user_regs_struct *regs,
		      uint64_t *ips, size_t max, size_t *nr)
{
	unw_cursor_t cursor;
	size_t n = 0;
	int ret;

	(void)tid;
	/* The stack changed since the last stop: forget cached pages. */
	for (size_t i = 0; i < ULP_UNWIND_PAGES; i++)
		u->pages[i].addr = 0;
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
		ret = unw_step(&cursor);
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
