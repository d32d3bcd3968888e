/* SPDX-License-Identifier: MIT */
#include "inject.h"

#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "error.h"
#include "memfd.h"
#include "memory.h"
#include "process.h"
#include "procfs.h"
#include "call_stub.h"
#include "recovery.h"
#include "remote_call.h"
#include "rt_abi.h"
#include "symbols.h"
#include "unwind.h"

#define ULP_INJECT_CALL_TIMEOUT_MS 5000
#define ULP_INJECT_READY_TIMEOUT_MS 10000
#define ULP_INJECT_PARK_TRIES 200
#define ULP_MAX_FRAMES 256

static char ulp_rt_path[4096] = ULP_RUNTIME_INSTALL_PATH;

void ulp_runtime_set_path(const char *path)
{
	snprintf(ulp_rt_path, sizeof(ulp_rt_path), "%s", path);
}

const char *ulp_runtime_path(void)
{
	return ulp_rt_path;
}

/*
 * ULP_SELF_SWITCH=0 in ulpd's environment: slots send no thread to the
 * runtime's self-switch check; ulpd's own checks switch every thread.
 */
static bool ulp_self_switch_wanted(void)
{
	const char *e = getenv("ULP_SELF_SWITCH");

	return !e || strcmp(e, "0") != 0;
}

static int ulp_runtime_read_info(struct ulp_target *t, struct ulp_process *p, uint64_t addr)
{
	struct ulp_rt_info hdr;
	int ret;

	/* Only the fixed header: the log and scratch are read on demand. */
	ret = ulp_mem_read(p, addr, &hdr, offsetof(struct ulp_rt_info, log));
	if (ret == -EFAULT || ret == -EIO)
		return -EAGAIN; /* being mapped: the loader has not zero-filled .bss yet */
	if (ret < 0)
		return ret;
	if (hdr.magic == 0 || (hdr.magic == ULP_RT_MAGIC && hdr.abi == 0))
		return -EAGAIN; /* mapped, constructor not run (or not far) yet */
	if (hdr.magic != ULP_RT_MAGIC || hdr.abi != ULP_RT_ABI)
		return ulp_errorf(-EPROTO, "process %d has an incompatible ulp runtime loaded",
				  p->pid);
	if (!hdr.ready)
		return -EAGAIN;
	t->rt_info = addr;
	t->worker_tid = hdr.worker_tid;
	p->own_tid = hdr.worker_tid;
	t->tls_offset = hdr.tls_offset;
	t->tls_init = hdr.tls_init;
	t->worker_tfd = hdr.worker_fd;
	t->self_check_entry = ulp_self_switch_wanted() ? hdr.self_check_entry : 0;
	memcpy(t->self_uncounted, hdr.self_check_uncounted, sizeof(t->self_uncounted));
	t->checks_running = hdr.checks_running;
	/* no worker: a forked child's, started when ulpd adopts it */
	t->fn_worker_start = hdr.fn_worker_start;
	if (!t->tls_init)
		return ulp_errorf(-EPROTO, "the ulp runtime in process %d did not start", p->pid);
	return 0;
}

int ulp_runtime_info_addr(struct ulp_symbols *syms, uint64_t *addr)
{
	struct ulp_symbol sym;
	int ret;

	if (!ulp_symbols_find_object(syms, ULP_RT_SONAME))
		return -ENOENT;
	ret = ulp_symbols_resolve(syms, ULP_RT_SONAME, ULP_RT_INFO_SYMBOL, 0, &sym);
	if (ret == 0)
		*addr = sym.addr;
	return ret;
}

int ulp_runtime_find_at(struct ulp_target *t, struct ulp_process *p, uint64_t addr)
{
	return ulp_runtime_read_info(t, p, addr);
}

/* The runtime already there (loaded by an earlier ulpd)? */
int ulp_runtime_find(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms)
{
	uint64_t addr;
	int ret = ulp_runtime_info_addr(syms, &addr);

	return ret < 0 ? ret : ulp_runtime_read_info(t, p, addr);
}

static bool ulp_frame_unsafe(struct ulp_symbols *syms, uint64_t ip)
{
	static const char *const unsafe_prefixes[] = {
		"malloc",
		"free",
		"calloc",
		"realloc",
		"_int_",
		"__libc_malloc",
		"__libc_free",
		"__libc_calloc",
		"__libc_realloc",
		"tcache",
		"arena",
		"sysmalloc",
		"_dl_",
		"dl_",
		"__libc_dl",
		"pthread_create",
		"__pthread_create",
		"allocate_stack",
		"fork",
		"__libc_fork",
		"_Fork",
		"__malloc",
		"memalign",
		"posix_memalign",
		"aligned_alloc",
		"__libc_memalign",
		"mmap_chunk",
		"unlink_chunk",
		"__restore_rt", /* a signal handler's frame: maybe on a small sigaltstack */
	};
	const struct ulp_object_map *obj = ulp_symbols_object_at(syms, ip);
	const char *name;

	if (!obj)
		return false;
	if (strstr(obj->name, "ld-linux") || strstr(obj->path, "/ld-"))
		return true;
	if (strncmp(obj->name, "libc.so", 7) != 0)
		return false;
	name = ulp_symbols_name_at(syms, ip, NULL);
	if (!name)
		return true; /* inside libc but unnamed: do not guess */
	for (size_t i = 0; i < sizeof(unsafe_prefixes) / sizeof(unsafe_prefixes[0]); i++)
		if (strncmp(name, unsafe_prefixes[i], strlen(unsafe_prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * Stop everyone, pick a thread whose whole stack is outside the allocator
 * and the loader, and let the others run again: our remote calls take the
 * locks those hold, so they must be free to release them.
 */
static int ulp_pick_parked_thread(struct ulp_process *p, struct ulp_symbols *syms,
				  struct ulp_thread **out)
{
	struct ulp_unwinder *unw = NULL;
	uint64_t *ips;
	int ret;

	ret = ulp_unwinder_create(p->pid, &unw);
	if (ret < 0)
		return ret;
	ips = malloc(ULP_MAX_FRAMES * sizeof(*ips));
	if (!ips) {
		ulp_unwinder_destroy(unw);
		return ulp_errorf(-ENOMEM, "out of memory");
	}
	ret = -EAGAIN;
	for (int attempt = 0; attempt < ULP_INJECT_PARK_TRIES; attempt++) {
		pid_t chosen = 0;

		ret = ulp_process_stop_all(p);
		if (ret < 0)
			break;
		for (size_t i = 0; i < p->nr_threads && !chosen; i++) {
			struct ulp_thread *th = p->threads[i];
			bool safe = true;
			size_t n = 0;

			/*
			 * A thread with a signal on its way is not taken: the
			 * call stub would make its interrupted syscall again
			 * after the handler, where pause() must return.
			 */
			if (th->gone || !th->regs_valid || th->pending_sig)
				continue;
			if (ulp_unwind_thread(unw, th->tid, &th->regs, ips, ULP_MAX_FRAMES, &n) < 0)
				continue;
			for (size_t f = 0; f < n && safe; f++)
				safe = !ulp_frame_unsafe(syms, f ? ips[f] - 1 : ips[f]);
			if (safe && ulp_remote_can_borrow(p, th))
				chosen = th->tid;
		}
		for (size_t i = 0; i < p->nr_threads; i++)
			if (p->threads[i]->tid != chosen)
				ulp_thread_resume(p, p->threads[i]);
		if (chosen) {
			*out = ulp_process_find_thread(p, chosen);
			ret = 0;
			break;
		}
		ret = ulp_errorf(
			-EAGAIN,
			"no thread of process %d is parked outside the allocator and the dynamic loader",
			p->pid);
		usleep(5000);
	}
	ulp_unwinder_destroy(unw);
	free(ips);
	return ret;
}

/*
 * The target reaches our runtime file itself at its path: loaded by path,
 * its pages are shared with every process that has it.  Otherwise (another
 * mount namespace or root without it, or another file there) it gets a
 * sealed memfd copy.
 */
static bool ulp_runtime_visible(pid_t pid)
{
	struct stat ours, theirs;
	char path[4200];

	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, ulp_rt_path);
	return stat(ulp_rt_path, &ours) == 0 && stat(path, &theirs) == 0 &&
	       ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
}

struct ulp_libc_funcs {
	uint64_t mmap, munmap, dlopen, dlerror, pthread_self, pthread_detach, pthread_create;
	uint64_t memfd_create, close;
};

static int ulp_resolve_libc(struct ulp_symbols *syms, struct ulp_libc_funcs *f)
{
	int ret;

	if ((ret = ulp_symbols_libc_func(syms, "mmap", &f->mmap)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "munmap", &f->munmap)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "dlopen", &f->dlopen)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "dlerror", &f->dlerror)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "memfd_create", &f->memfd_create)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "close", &f->close)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "pthread_self", &f->pthread_self)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "pthread_detach", &f->pthread_detach)) < 0 ||
	    (ret = ulp_symbols_libc_func(syms, "pthread_create", &f->pthread_create)) < 0)
		return ulp_error_prefix(ret, "cannot inject the ulp runtime");
	return 0;
}

/*
 * Borrow the stopped thread h through the call stub (placed first, if it
 * is not there yet).  On failure h is resumed, untouched.
 */
static int ulp_borrow(struct ulp_process *p, struct ulp_symbols *syms, struct ulp_thread *h,
		      struct ulp_call_stub *stub, struct ulp_remote **r)
{
	int ret = ulp_call_stub_place(p, syms, stub);

	if (ret == 0)
		ret = ulp_remote_begin(p, h, stub, r);
	if (ret < 0)
		ulp_thread_resume(p, h);
	return ret;
}

/*
 * The runtime as a sealed memfd of the target, for a target that cannot
 * reach our file (ulp_runtime_visible): its /proc/self/fd/N path in *path.
 * The descriptor stays open for the life of the process, so no later memfd
 * (a patch's) can take that name while the runtime is loaded under it.
 */
static int ulp_runtime_memfd(struct ulp_process *p, struct ulp_remote *r,
			     const struct ulp_libc_funcs *f, char *path, size_t size, int64_t *fd)
{
	/* the name ulpd later knows the runtime by in the maps */
	static const char name[] = ULP_RT_MAPPED;
	uint64_t args[2] = { ulp_remote_scratch(r), MFD_CLOEXEC | MFD_ALLOW_SEALING }, tfd, ret;
	int rc;

	rc = ulp_mem_write(p, args[0], name, sizeof(name));
	if (rc == 0)
		rc = ulp_remote_call(r, f->memfd_create, args, 2, &tfd, ULP_INJECT_CALL_TIMEOUT_MS);
	if (rc < 0)
		return rc;
	if ((int)tfd < 0)
		return ulp_errorf(-EMFILE, "process %d cannot create a memfd for the ulp runtime",
				  p->pid);
	rc = ulp_memfd_fill(p->pid, (int)tfd, ulp_rt_path, "the ulp runtime");
	if (rc < 0) {
		ulp_remote_call(r, f->close, &tfd, 1, &ret, ULP_INJECT_CALL_TIMEOUT_MS);
		return rc;
	}
	snprintf(path, size, "/proc/self/fd/%d", (int)tfd);
	*fd = (int)tfd;
	return 0;
}

/* What a started loader thread holds in the target. */
struct ulp_loader {
	uint64_t page; /* its struct ulp_loader_page: unmapped by the loader once loaded */
	uint64_t nonce; /* in that page while it is the loader's */
	int64_t memfd; /* the runtime's memfd, or -1 */
};

/*
 * On a borrowed thread: unmap the loader's page and close the runtime's
 * memfd, whichever there is; the error being returned meanwhile is kept.
 */
static void ulp_loader_undo(struct ulp_remote *r, const struct ulp_libc_funcs *f,
			    const struct ulp_loader *ld)
{
	uint64_t unmap[2] = { ld->page, sizeof(struct ulp_loader_page) }, fd = (uint64_t)ld->memfd,
		 ret;
	struct ulp_error_stash why;

	ulp_error_stash(&why);
	if (ld->page)
		ulp_remote_call(r, f->munmap, unmap, 2, &ret, ULP_INJECT_CALL_TIMEOUT_MS);
	if (ld->memfd >= 0)
		ulp_remote_call(r, f->close, &fd, 1, &ret, ULP_INJECT_CALL_TIMEOUT_MS);
	ulp_error_unstash(&why);
}

/*
 * On the parked thread: map a page for the loader (the runtime's path and
 * the functions it calls) and start a thread at the call stub's loader,
 * which dlopen()s the runtime on a fresh, lock-free thread and unmaps the
 * page (or leaves dlerror()'s message there).  Calls through the call
 * stub: a ulpd killed during any leaves the thread to go on, and at worst
 * a page mapped.
 */
static int ulp_start_loader_thread(struct ulp_process *p, struct ulp_thread *h,
				   struct ulp_symbols *syms, const struct ulp_libc_funcs *f,
				   struct ulp_loader *ld)
{
	struct ulp_loader_page *page = calloc(1, sizeof(*page));
	struct ulp_call_stub stub;
	struct ulp_remote *r = NULL;
	uint64_t at = 0, ret, args[6];
	size_t len = strlen(ulp_rt_path) + 1;
	int64_t memfd = -1;
	int rc;

	if (!page || len > sizeof(page->path)) {
		ulp_thread_resume(p, h);
		free(page);
		return page ? ulp_errorf(-ENAMETOOLONG, "the ulp runtime's path is too long")
			    : ulp_errorf(-ENOMEM, "out of memory");
	}
	rc = ulp_borrow(p, syms, h, &stub, &r);
	if (rc < 0) {
		free(page);
		return rc;
	}
	if (ulp_runtime_visible(p->pid))
		memcpy(page->path, ulp_rt_path, len);
	else
		rc = ulp_runtime_memfd(p, r, f, page->path, sizeof(page->path), &memfd);
	args[0] = 0;
	args[1] = sizeof(*page);
	args[2] = PROT_READ | PROT_WRITE;
	args[3] = MAP_PRIVATE | MAP_ANONYMOUS;
	args[4] = (uint64_t)-1;
	args[5] = 0;
	if (rc == 0)
		rc = ulp_remote_call(r, f->mmap, args, 6, &at, ULP_INJECT_CALL_TIMEOUT_MS);
	if (rc == 0 && (at == (uint64_t)MAP_FAILED || at == 0)) {
		at = 0;
		rc = ulp_errorf(-ENOMEM, "cannot map memory in process %d", p->pid);
	}
	if (rc == 0) {
		page->dlopen = f->dlopen;
		page->pthread_self = f->pthread_self;
		page->pthread_detach = f->pthread_detach;
		page->dlerror = f->dlerror;
		if (getrandom(&page->nonce, sizeof(page->nonce), 0) != sizeof(page->nonce))
			page->nonce = ulp_now_us() ^ ((uint64_t)p->pid << 32);
		ld->nonce = page->nonce;
		rc = ulp_mem_write(p, at, page,
				   offsetof(struct ulp_loader_page, path) + strlen(page->path) + 1);
	}
	if (rc == 0) {
		args[0] = ulp_remote_scratch(r); /* the pthread_t, not needed after */
		args[1] = 0;
		args[2] = stub.loader;
		args[3] = at;
		rc = ulp_remote_call(r, f->pthread_create, args, 4, &ret,
				     ULP_INJECT_CALL_TIMEOUT_MS);
		if (rc == 0 && (int)ret != 0)
			rc = ulp_errorf(-(int)ret, "cannot start a thread in process %d: %s",
					p->pid, strerror((int)ret));
	}
	ld->page = at;
	ld->memfd = memfd;
	/* no trace left (unless the call itself is what failed) */
	if (rc < 0)
		ulp_loader_undo(r, f, ld);
	ulp_remote_end(r);
	free(page);
	return rc;
}

/* After the loader failed: its page and the runtime's memfd go. */
static void ulp_loader_release(struct ulp_process *p, struct ulp_symbols *syms,
			       const struct ulp_libc_funcs *f, const struct ulp_loader *ld)
{
	struct ulp_call_stub stub;
	struct ulp_thread *h;
	struct ulp_remote *r;

	if (ulp_pick_parked_thread(p, syms, &h) < 0 || ulp_borrow(p, syms, h, &stub, &r) < 0)
		return;
	ulp_loader_undo(r, f, ld);
	ulp_remote_end(r);
}

enum ulp_loader_state { ULP_LOADER_LOADING, ULP_LOADER_DONE, ULP_LOADER_FAILED };

/*
 * Where the loader thread is: its page still there (loading), gone or
 * taken by something else (dlopen() returned, the runtime is mapped whole),
 * or marked failed with dlerror()'s message, copied to msg.  One read of
 * the target's memory: cheaper than its maps, polled every millisecond.
 */
static enum ulp_loader_state ulp_loader_state(struct ulp_process *p, const struct ulp_loader *ld,
					      char *msg, size_t size)
{
	struct {
		uint64_t nonce;
		uint32_t failed;
	} mark = { 0, 0 };

	_Static_assert(offsetof(struct ulp_loader_page, failed) ==
			       offsetof(struct ulp_loader_page, nonce) + 8,
		       "nonce, then failed");
	if (ulp_mem_read(p, ld->page + offsetof(struct ulp_loader_page, nonce), &mark, 12) < 0) {
		ulp_error_clear();
		return ULP_LOADER_DONE; /* unmapped */
	}
	if (mark.nonce != ld->nonce)
		return ULP_LOADER_DONE;
	if (!mark.failed)
		return ULP_LOADER_LOADING;
	if (ulp_mem_read_string(p, ld->page + offsetof(struct ulp_loader_page, path), msg, size) <
	    0)
		snprintf(msg, size, "(no message)");
	return ULP_LOADER_FAILED;
}

static void ulp_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

int ulp_runtime_ensure(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols **syms)
{
	struct ulp_libc_funcs f = { 0 };
	struct ulp_thread *h = NULL;
	struct ulp_loader ld = { 0, 0, -1 };
	uint64_t info_addr = 0;
	char msg[512];
	int ret, waited;

	if (t->rt_info && ulp_runtime_read_info(t, p, t->rt_info) == 0)
		return 0;
	t->rt_info = 0;
	ret = ulp_runtime_find(t, p, *syms);
	/* a forked child's runtime, without a worker yet */
	if (ret == 0 && !t->worker_tid)
		ret = ulp_runtime_start_worker(t, p, *syms);
	if (ret == 0)
		p->own_tid = t->worker_tid;
	if (ret != -ENOENT)
		return ret;
	if (!ulp_symbols_find_object(*syms, "libc.so.6"))
		return ulp_errorf(
			-ENOTSUP,
			"process %d is statically linked (no libc.so.6 mapped); ulp patches dynamically linked programs only",
			p->pid);
	ret = ulp_resolve_libc(*syms, &f);
	if (ret < 0)
		return ret;
	ret = ulp_pick_parked_thread(p, *syms, &h);
	if (ret < 0)
		return ret;
	ulp_trace("inject: thread %d borrowed", h->tid);
	ulp_fault_point("inject-borrowed");
	ret = ulp_start_loader_thread(p, h, *syms, &f, &ld);
	ulp_trace("inject: loader thread started");
	ulp_fault_point("inject-loading");
	if (ret < 0)
		return ulp_error_prefix(ret, "cannot inject the ulp runtime into process %d",
					p->pid);
	for (waited = 0; waited < ULP_INJECT_READY_TIMEOUT_MS && !t->rt_info; waited++) {
		enum ulp_loader_state state;

		ulp_process_poll(p, 0);
		if (p->exited)
			return ulp_errorf(-ESRCH, "process %d exited while the runtime was loading",
					  p->pid);
		ulp_sleep_ms(1);
		state = ulp_loader_state(p, &ld, msg, sizeof(msg));
		if (state == ULP_LOADER_FAILED) {
			ulp_loader_release(p, *syms, &f, &ld);
			ulp_error_clear();
			return ulp_errorf(-ENOEXEC, "process %d cannot load the ulp runtime %s: %s",
					  p->pid, ulp_rt_path, msg);
		}
		if (state == ULP_LOADER_LOADING)
			continue;
		/* loaded: its symbols once, then only its header until the worker is up */
		if (!info_addr) {
			struct ulp_symbols *fresh = NULL;

			if (ulp_symbols_open(p->pid, &fresh) < 0 ||
			    ulp_runtime_info_addr(fresh, &info_addr) < 0) {
				ulp_symbols_close(fresh);
				info_addr = 0;
				ulp_error_clear();
				continue;
			}
			ulp_trace("inject: symbols reread");
			ulp_symbols_close(*syms);
			*syms = fresh;
		}
		ret = ulp_runtime_read_info(t, p, info_addr);
		if (ret < 0 && ret != -EAGAIN)
			return ret;
		ulp_error_clear();
	}
	if (!t->rt_info)
		return ulp_errorf(-ETIMEDOUT, "the ulp runtime %s did not start in process %d",
				  ulp_rt_path, p->pid);
	t->rt_log_seen = 0;
	return 0;
}

/*
 * A call through the worker's channel: nothing is stopped, so ulpd dying
 * meanwhile leaves the target whole.  ptrace events of the other threads
 * (new threads, signals) are handled while waiting: the call may need them.
 */
static int ulp_runtime_call_channel(struct ulp_target *t, struct ulp_process *p, uint64_t fn,
				    const uint64_t *args, int nr_args, uint64_t *ret)
{
	struct ulp_worker_call call = { .seq = ++t->worker_seq, .fn = fn };
	uint64_t deadline = ulp_now_us() + ULP_INJECT_CALL_TIMEOUT_MS * 1000ull;

	for (int i = 0; i < nr_args && i < ULP_WORKER_ARGS; i++)
		call.args[i] = args[i];
	if (send(t->worker_fd, &call, sizeof(call), MSG_NOSIGNAL) != (ssize_t)sizeof(call))
		return ulp_errorf(-errno ? -errno : -EIO,
				  "cannot reach the ulp runtime's worker in process %d: %s", p->pid,
				  strerror(errno));
	while (ulp_now_us() < deadline) {
		struct pollfd pfd = { .fd = t->worker_fd, .events = POLLIN };
		struct ulp_worker_result res;
		int n = poll(&pfd, 1, 2);

		if (n > 0 && (pfd.revents & POLLIN)) {
			ssize_t got = recv(t->worker_fd, &res, sizeof(res), 0);

			if (got != (ssize_t)sizeof(res))
				return ulp_errorf(
					-EPROTO,
					"bad answer from the ulp runtime in process %d (%zd bytes: %s)",
					p->pid, got, got < 0 ? strerror(errno) : "short");
			if (res.seq != call.seq)
				continue; /* a call an earlier ulpd (or a timed-out one) sent */
			*ret = res.ret;
			return 0;
		}
		if (n > 0 && (pfd.revents & (POLLHUP | POLLERR)))
			break;
		ulp_process_poll(p, 0);
		if (p->exited)
			return ulp_errorf(-ESRCH,
					  "process %d exited during a call into the ulp runtime",
					  p->pid);
	}
	return ulp_errorf(-ETIMEDOUT,
			  "the ulp runtime's worker in process %d did not answer within %d ms",
			  p->pid, ULP_INJECT_CALL_TIMEOUT_MS);
}

/* ulpd's copy of the worker's end of the channel, taken from the target. */
/* The worker's channel, taken from the process once: 0 or an error with its message. */
static int ulp_worker_channel_take(struct ulp_target *t, struct ulp_process *p)
{
	int fd;

	if (t->worker_fd >= 0)
		return 0;
	if (t->worker_tfd < 0)
		return ulp_errorf(-EBADF, "the ulp runtime in process %d has no worker channel",
				  p->pid);
	fd = ulp_proc_take_fd(p->pid, t->worker_tfd);
	if (fd < 0)
		return ulp_errorf(
			-EBADF, "cannot take the ulp runtime's channel (fd %d) from process %d: %s",
			t->worker_tfd, p->pid, strerror(-fd));
	t->worker_fd = fd;
	return 0;
}

int ulp_runtime_start_worker(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms)
{
	struct ulp_thread *h = NULL;
	uint64_t r = 0;
	int ret;

	if (t->worker_tid)
		return 0;
	ret = ulp_pick_parked_thread(p, syms, &h);
	if (ret < 0)
		return ulp_error_prefix(ret, "cannot start the ulp runtime's worker in process %d",
					p->pid);
	{
		struct ulp_call_stub stub;
		struct ulp_remote *rc = NULL;

		ret = ulp_borrow(p, syms, h, &stub, &rc);
		if (ret == 0) {
			ret = ulp_remote_call(rc, t->fn_worker_start, NULL, 0, &r,
					      ULP_INJECT_CALL_TIMEOUT_MS);
			ulp_remote_end(rc);
		}
	}
	if (ret == 0 && (int)r < 0)
		ret = ulp_errorf((int)r, "the ulp runtime's worker did not start in process %d",
				 p->pid);
	if (ret == 0)
		ret = ulp_runtime_read_info(t, p, t->rt_info);
	return ret;
}

int ulp_runtime_call(struct ulp_target *t, struct ulp_process *p, uint64_t fn, const uint64_t *args,
		     int nr_args, uint64_t *ret)
{
	int err;

	ulp_trace("runtime call 0x%llx", (unsigned long long)fn);
	err = ulp_worker_channel_take(t, p);
	if (err < 0)
		return err;
	return ulp_runtime_call_channel(t, p, fn, args, nr_args, ret);
}

void ulp_runtime_drain_log(struct ulp_target *t, struct ulp_process *p)
{
	uint64_t head, start, base;
	char *ring, line[1100];
	size_t n = 0;

	if (!t->rt_info)
		return;
	if (ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, log_head), &head) < 0)
		return;
	start = t->rt_log_seen;
	if (head - start > ULP_RT_LOG_SIZE)
		start = head - ULP_RT_LOG_SIZE; /* overrun: the oldest lines are lost */
	if (start == head)
		return;
	ring = malloc(ULP_RT_LOG_SIZE);
	base = t->rt_info + offsetof(struct ulp_rt_info, log);
	if (!ring || ulp_mem_read(p, base, ring, ULP_RT_LOG_SIZE) < 0) {
		free(ring);
		return;
	}
	for (uint64_t i = start; i < head; i++) {
		char c = ring[i % ULP_RT_LOG_SIZE];

		if (c == '\n' || n == sizeof(line) - 1) {
			line[n] = '\0';
			ulp_target_log(t, "%s", line);
			n = 0;
			continue;
		}
		line[n++] = c;
	}
	free(ring);
	t->rt_log_seen = head;
}

void ulp_target_refresh_log(struct ulp_target *t)
{
	struct ulp_process p = { .pid = t->pid };
	char path[64];

	if (!t->rt_info || !ulp_target_alive(t))
		return;
	snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
	p.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p.mem_fd < 0)
		return;
	ulp_runtime_drain_log(t, &p);
	close(p.mem_fd);
}
