/* SPDX-License-Identifier: MIT */
/*
 * libulp-rt.so: loaded once into every patched process.  It keeps the
 * per-thread patch state byte the slots test, parks a worker thread on which
 * ulpd runs its remote calls (so no application thread is ever borrowed once
 * the runtime is in), and provides ulp_log() to patches.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ulp/patch.h>

#include "../libpatch/codegen.h"
#include "../libpatch/rt_abi.h"
#include "runtime.h"

ULP_RT_EXPORT struct ulp_rt_info ulp_rt_info;

/*
 * Initial-exec so that the byte sits at a constant offset from every
 * thread's %fs base, which the slot code tests directly.  Non-zero so that
 * it lives in .tdata: ulpd rewrites the init image so threads created
 * during a transition start in the target state.  It holds the generation
 * of the last transition the thread switched to (see codegen.h).
 */
__thread struct ulp_thread_tls ulp_thread_tls __attribute__((tls_model("initial-exec"))) = {
	.state = ULP_THREAD_GEN_INITIAL,
	/* not the first generation (ULP_THREAD_GEN_INITIAL + 1) */
	.tried = ULP_THREAD_GEN_INITIAL,
};

static pthread_mutex_t ulp_log_lock = PTHREAD_MUTEX_INITIALIZER;

ULP_RT_EXPORT void *ulp_rt_load(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		snprintf(ulp_rt_info.scratch, sizeof(ulp_rt_info.scratch), "%s",
			 e ? e : "dlopen failed");
	}
	return h;
}

ULP_RT_EXPORT void *ulp_rt_load_near(const char *path, const uint64_t *reserve, size_t nr)
{
	uint64_t held[ULP_RT_RESERVE_MAX][2];
	void *h;

	/* reserve may lie in the scratch area a dlopen error overwrites */
	if (nr > ULP_RT_RESERVE_MAX)
		nr = ULP_RT_RESERVE_MAX;
	memcpy(held, reserve, nr * sizeof(held[0]));
	for (size_t i = 0; i < nr; i++) {
		void *want = (void *)(uintptr_t)held[i][0];
		void *p = mmap(want, held[i][1], PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			       -1, 0);

		if (p != want) {
			/* taken since ulpd read the maps: the patch may land elsewhere */
			if (p != MAP_FAILED)
				munmap(p, held[i][1]);
			held[i][1] = 0;
		}
	}
	h = ulp_rt_load(path);
	for (size_t i = 0; i < nr; i++)
		if (held[i][1])
			munmap((void *)(uintptr_t)held[i][0], held[i][1]);
	return h;
}

ULP_RT_EXPORT int ulp_rt_unload(void *handle)
{
	return dlclose(handle);
}

/*
 * An empty sealable memfd for ulpd to fill with a patch (rt_abi.h,
 * fn_memfd); its fd, or -errno.
 */
ULP_RT_EXPORT int ulp_rt_memfd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	return fd < 0 ? -errno : fd;
}

ULP_RT_EXPORT int ulp_rt_close(int fd)
{
	return close(fd) < 0 ? -errno : 0;
}

ULP_RT_EXPORT void *ulp_rt_mmap(void *addr, size_t len, int prot)
{
	void *p = mmap(addr, len, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | (addr ? MAP_FIXED_NOREPLACE : 0), -1, 0);

	if (p == MAP_FAILED)
		return (void *)(long)-errno;
	if (addr && p != addr) {
		/* old kernels treat the flag as a hint */
		munmap(p, len);
		return (void *)(long)-EEXIST;
	}
	return p;
}

ULP_RT_EXPORT int ulp_rt_munmap(void *addr, size_t len)
{
	return munmap(addr, len) ? -errno : 0;
}

static long ulp_raw_syscall2(long nr, long a, long b)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

/*
 * Serialise every CPU that runs a thread of this process, so that none
 * executes code bytes it fetched before ulpd's last write (the kernel's
 * text_poke_bp does the same with an IPI).  Raw system calls: this runs
 * while function entries hold an int3 and must not enter code that may be
 * patched, libc's syscall() included.
 */
static int ulp_sync_core_registered;

static int ulp_rt_sync_core_register(void)
{
	long r;

	if (ulp_sync_core_registered)
		return 0;
	r = ulp_raw_syscall2(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
			     0);
	if (r < 0)
		return (int)r;
	ulp_sync_core_registered = 1;
	return 0;
}

ULP_RT_EXPORT int ulp_rt_sync_core(void)
{
	int r = ulp_rt_sync_core_register();

	if (r < 0)
		return r;
	return (int)ulp_raw_syscall2(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0);
}

void ulp_rt_log_line(const char *line)
{
	size_t len = strlen(line);

	pthread_mutex_lock(&ulp_log_lock);
	for (size_t i = 0; i < len; i++)
		ulp_rt_info.log[(ulp_rt_info.log_head + i) % ULP_RT_LOG_SIZE] = line[i];
	__atomic_store_n(&ulp_rt_info.log_head, ulp_rt_info.log_head + len, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ulp_log_lock);
}

static const char *ulp_caller_patch_name(const void *caller)
{
	struct link_map *map = NULL;
	struct ulp_patch *desc;
	Dl_info info;

	/*
	 * A link_map is a handle for dlsym(), so no dlopen() is needed: this
	 * also runs inside the loader hook, where dlopen() must not be called.
	 */
	if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
		return "unknown";
	desc = dlsym(map, ULP_PATCH_SYMBOL);
	return desc && desc->name ? desc->name : "unknown";
}

static void ulp_log_line_v(const char *patch, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = snprintf(line, sizeof(line), "%s: ", patch);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	line[n] = '\0';
	ulp_rt_log_line(line);
}

ULP_RT_EXPORT void ulp_log_patch(const struct ulp_patch *patch, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ulp_log_line_v(patch && patch->name ? patch->name : "unknown", fmt, ap);
	va_end(ap);
}

/* Parenthesised: the name is also the macro of <ulp/patch.h>. */
ULP_RT_EXPORT void(ulp_log)(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ulp_log_line_v(ulp_caller_patch_name(__builtin_return_address(0)), fmt, ap);
	va_end(ap);
}

ULP_RT_EXPORT const char *ulp_object_describe(const struct ulp_object *obj)
{
	/*
	 * Not __thread: a dlopen()ed library's TLS comes out of the loader's
	 * small static surplus.  A few buffers in turn serve callbacks, which
	 * run one at a time.
	 */
	static char bufs[8][512];
	static unsigned next;
	char *buf = bufs[__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) % 8];
	static const char *const states[] = {
		[ULP_OBJECT_LIVE] = "[ULP_OBJECT_LIVE] Normal state",
		[ULP_OBJECT_COMING] = "[ULP_OBJECT_COMING] Fully formed, running constructors",
		[ULP_OBJECT_GOING] = "[ULP_OBJECT_GOING] Going away",
	};

	if (!obj->name)
		return "main";
	snprintf(buf, sizeof(bufs[0]), "%s -> %s", obj->name,
		 obj->state >= 0 && obj->state <= ULP_OBJECT_GOING ? states[obj->state]
								   : "[unknown]");
	return buf;
}

typedef uint64_t (*ulp_worker_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* The worker's end of its channel (rt_abi.h, "Worker channel"). */
static int ulp_worker_fd = -1;

static void *ulp_worker(void *arg)
{
	struct ulp_worker_call call;
	sigset_t all;

	(void)arg;
	/*
	 * Signals are the application's business; never run its handlers
	 * here.  But SIGTRAP: an int3 a dead ulpd left where this thread
	 * goes (the loader's hook) needs the runtime's guard, and a blocked
	 * SIGTRAP kills.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	__atomic_store_n(&ulp_rt_info.worker_tid, (int32_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	/*
	 * The first code change serialises CPUs with membarrier, whose
	 * registration takes a while: done now, while ulpd prepares the patch.
	 */
	ulp_rt_sync_core_register();
	for (;;) {
		ssize_t n = ulp_worker_fd < 0 ? -1 : recv(ulp_worker_fd, &call, sizeof(call), 0);
		struct ulp_worker_result res;

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(call)) {
			/* no channel (or a broken one): still a thread ulpd may call the old way */
			if (n <= 0)
				for (;;)
					pause();
			continue;
		}
		res.seq = call.seq;
		res.ret = ((ulp_worker_fn)call.fn)(call.args[0], call.args[1], call.args[2],
						   call.args[3], call.args[4], call.args[5]);
		/* ulpd gone: the answer waits in the channel, and is skipped by the next one */
		send(ulp_worker_fd, &res, sizeof(res), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	return NULL;
}

/* The channel's pair: the worker's end, and ulpd's end in ulp_rt_info.worker_fd. */
static void ulp_worker_channel_open(void)
{
	int sv[2];

	ulp_rt_info.worker_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	ulp_worker_fd = sv[0];
	ulp_rt_info.worker_fd = sv[1];
}

static int ulp_find_tls_init(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *self = data;

	(void)size;
	if (!info->dlpi_name || !strstr(info->dlpi_name, self))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		struct ulp_tls_index ti = { .module = info->dlpi_tls_modid, .offset = 0 };
		char *block;

		if (ph->p_type != PT_TLS || !info->dlpi_tls_modid)
			continue;
		/* dlpi_tls_data is NULL in a thread whose DTV predates our
		 * dlopen; __tls_get_addr brings the DTV up to date. */
		block = __tls_get_addr(&ti);
		ulp_rt_info.tls_init = info->dlpi_addr + ph->p_vaddr +
				       (uint64_t)((char *)&ulp_thread_tls.state - block);
		return 1;
	}
	return 0;
}

/* The worker thread and its channel; returns once the thread runs. */
static void ulp_worker_start(void)
{
	pthread_attr_t attr;
	pthread_t worker;

	ulp_worker_channel_open();
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&worker, &attr, ulp_worker, NULL) == 0) {
		while (!__atomic_load_n(&ulp_rt_info.worker_tid, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	pthread_attr_destroy(&attr);
}

/*
 * A forked child keeps the patched code but not the worker (only the
 * forking thread is copied), and shares the parent's channels: it lets go
 * of them.  It gets no thread here: a child that stays single-threaded
 * (to unshare() a user namespace, say) must be able to; ulpd starts the
 * worker (ulp_rt_worker_start) when it takes the child over.
 */
static void ulp_rt_atfork_child(void)
{
	if (ulp_worker_fd >= 0)
		close(ulp_worker_fd);
	if (ulp_rt_info.worker_fd >= 0)
		close(ulp_rt_info.worker_fd);
	ulp_worker_fd = -1;
	ulp_rt_info.worker_fd = -1;
	ulp_rt_info.worker_tid = 0;
	ulp_rt_hook_forget();
}

/* The worker of a forked child (rt_abi.h, fn_worker_start); 0 or -EAGAIN. */
ULP_RT_EXPORT int ulp_rt_worker_start(void)
{
	if (!__atomic_load_n(&ulp_rt_info.worker_tid, __ATOMIC_ACQUIRE))
		ulp_worker_start();
	return __atomic_load_n(&ulp_rt_info.worker_tid, __ATOMIC_ACQUIRE) ? 0 : -EAGAIN;
}

__attribute__((constructor)) static void ulp_rt_init(void)
{
	Dl_info self;
	char *tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	/* the ABI before the magic: a reader that sees the magic sees the ABI */
	ulp_rt_info.abi = ULP_RT_ABI;
	__atomic_store_n(&ulp_rt_info.magic, ULP_RT_MAGIC, __ATOMIC_RELEASE);
	ulp_rt_info.tls_offset = (int32_t)((char *)&ulp_thread_tls.state - tp);
	ulp_rt_info.fn_load = (uint64_t)ulp_rt_load;
	ulp_rt_info.fn_unload = (uint64_t)ulp_rt_unload;
	ulp_rt_info.fn_mmap = (uint64_t)ulp_rt_mmap;
	ulp_rt_info.fn_munmap = (uint64_t)ulp_rt_munmap;
	ulp_rt_info.fn_load_near = (uint64_t)ulp_rt_load_near;
	ulp_rt_info.fn_memfd = (uint64_t)ulp_rt_memfd;
	ulp_rt_info.fn_worker_start = (uint64_t)ulp_rt_worker_start;
	ulp_rt_info.fn_close = (uint64_t)ulp_rt_close;
	ulp_rt_info.fn_sync_core = (uint64_t)ulp_rt_sync_core;
	ulp_rt_info.fn_hook_open = (uint64_t)ulp_rt_hook_open;
	ulp_rt_info.fn_hook_release = (uint64_t)ulp_rt_hook_release;
	ulp_rt_info.hook_entry = (uint64_t)ulp_rt_dl_hook;
	ulp_rt_info.fn_trap_guard = (uint64_t)ulp_rt_trap_guard;
	ulp_rt_info.transition_patch = UINT32_MAX;
	ulp_rt_self_switch_init();
	if (dladdr((void *)ulp_rt_init, &self) && self.dli_fname) {
		const char *base = strrchr(self.dli_fname, '/');

		dl_iterate_phdr(ulp_find_tls_init, (void *)(base ? base + 1 : self.dli_fname));
	}
	ulp_worker_start();
	pthread_atfork(NULL, NULL, ulp_rt_atfork_child);
	__atomic_store_n(&ulp_rt_info.ready, 1, __ATOMIC_RELEASE);
}
