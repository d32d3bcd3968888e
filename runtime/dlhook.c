/* SPDX-License-Identifier: MIT */
/*
 * The loader hook: ulpd makes ld.so's _dl_debug_state() (the debugger
 * interface the loader calls on every change of its object list) jump to
 * ulp_rt_dl_hook().  At each RT_CONSISTENT the hook compares the list with
 * the one it saw last: objects new since then are mapped but not yet
 * relocated and none of their code has run (glibc 2.36 signals RT_CONSISTENT
 * before relocation and constructors); objects missing have been unmapped.
 * When one of them is named by a patch, the hook tells ulpd over its
 * channel and waits, running the callbacks ulpd asks for on this thread.
 *
 * The hook runs with the loader's lock held, on whatever thread calls
 * dlopen() or dlclose(): it makes plain system calls only, calls no dl*
 * function that could fail (which would overwrite the application's
 * dlerror() state), and never waits for another thread of the process.
 * Without ulpd it returns at once.
 */
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <errno.h>
#include <link.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../libpatch/rt_abi.h"
#include "runtime.h"

#define ULP_HOOK_KNOWN_MAX 4096
/* ulpd answers in milliseconds; this only bounds a stopped or wedged ulpd */
#define ULP_HOOK_REPLY_TIMEOUT_MS 30000

struct ulp_known {
	const struct link_map *map;
	uintptr_t l_addr;
	char name[256];
};

static struct ulp_known ulp_known[ULP_HOOK_KNOWN_MAX];
static size_t ulp_nr_known;
static int ulp_hook_fd = -1;
static pid_t ulp_hook_pid; /* the process ulpd opened the channel for (not a forked child) */
static struct r_debug *ulp_r_debug;
static int ulp_last_state = RT_CONSISTENT;
static struct ulp_hook_event ulp_event; /* under the loader's lock: one user at a time */

typedef void (*ulp_signal_error_fn)(int errcode, const char *objname, const char *occasion,
				    const char *errstring);
static ulp_signal_error_fn ulp_signal_error;

/*
 * DT_SONAME of m, else the file name; "" for the main program.  Only the
 * file name when !dynamic: outside the loader's lock an object may already
 * be unmapped while still listed.
 */
static void ulp_map_name(const struct link_map *m, char *out, size_t len, bool dynamic)
{
	const char *slash, *soname = NULL;
	uintptr_t strtab = 0;
	long off = -1;

	for (const ElfW(Dyn) *d = dynamic ? m->l_ld : NULL; d && d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_STRTAB)
			strtab = d->d_un.d_ptr;
		else if (d->d_tag == DT_SONAME)
			off = (long)d->d_un.d_val;
	}
	if (strtab && off >= 0) {
		/* the loader adjusts d_ptr in place, except in a read-only PT_DYNAMIC */
		if (strtab < m->l_addr)
			strtab += m->l_addr;
		soname = (const char *)strtab + off;
	}
	if (!soname) {
		slash = m->l_name ? strrchr(m->l_name, '/') : NULL;
		soname = slash ? slash + 1 : (m->l_name ? m->l_name : "");
	}
	snprintf(out, len, "%s", soname);
}

static bool ulp_watched(const char *name)
{
	const char *w = ulp_rt_info.watch;

	if (!name[0])
		return false;
	while (w < ulp_rt_info.watch + ULP_RT_WATCH_SIZE && *w) {
		if (strcmp(w, name) == 0)
			return true;
		w += strlen(w) + 1;
	}
	return false;
}

static bool ulp_is_known(const struct link_map *m)
{
	for (size_t i = 0; i < ulp_nr_known; i++)
		if (ulp_known[i].map == m && ulp_known[i].l_addr == m->l_addr)
			return true;
	return false;
}

static bool ulp_still_listed(const struct ulp_known *k)
{
	for (const struct link_map *m = ulp_r_debug->r_map; m; m = m->l_next)
		if (m == k->map && m->l_addr == k->l_addr)
			return true;
	return false;
}

static void ulp_remember_all(bool dynamic)
{
	ulp_nr_known = 0;
	for (const struct link_map *m = ulp_r_debug->r_map; m && ulp_nr_known < ULP_HOOK_KNOWN_MAX;
	     m = m->l_next) {
		struct ulp_known *k = &ulp_known[ulp_nr_known++];

		k->map = m;
		k->l_addr = m->l_addr;
		ulp_map_name(m, k->name, sizeof(k->name), dynamic);
	}
}

static void ulp_event_add(const char *name, uintptr_t l_addr, const char *path)
{
	struct ulp_hook_obj *o;

	if (ulp_event.nr >= ULP_HOOK_MAX_OBJS)
		return;
	o = &ulp_event.objs[ulp_event.nr++];
	o->l_addr = l_addr;
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->path, sizeof(o->path), "%s", path ? path : "");
}

static bool ulp_send_all(const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(ulp_hook_fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len;
}

/*
 * Tell ulpd, then do what it asks until it is done.  Returns 1 with msg
 * filled if ulpd refuses the load, 0 otherwise (also when ulpd is gone).
 */
static int ulp_hook_exchange(char *msg, size_t len)
{
	size_t size =
		offsetof(struct ulp_hook_event, objs) + ulp_event.nr * sizeof(ulp_event.objs[0]);

	if (!ulp_send_all(&ulp_event, size))
		return 0; /* no ulpd: the object stays as it is */
	for (;;) {
		struct pollfd pfd = { .fd = ulp_hook_fd, .events = POLLIN };
		struct ulp_hook_cmd cmd;
		struct ulp_hook_result res;
		ssize_t n;
		int r = poll(&pfd, 1, ULP_HOOK_REPLY_TIMEOUT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ulp_rt_log_line(
				"ulp: ulpd did not answer the loader hook; going on without it\n");
			return 0;
		}
		n = recv(ulp_hook_fd, &cmd, sizeof(cmd), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(cmd))
			return 0; /* ulpd went away meanwhile */
		switch (cmd.op) {
		case ULP_HOOK_CALL:
			res.ret = (int64_t)((uint64_t(*)(uint64_t))(uintptr_t)cmd.fn)(cmd.arg);
			if (!ulp_send_all(&res, sizeof(res)))
				return 0;
			break;
		case ULP_HOOK_REJECT:
			cmd.msg[sizeof(cmd.msg) - 1] = '\0';
			snprintf(msg, len, "%s", cmd.msg);
			return 1;
		default:
			return 0;
		}
	}
}

ULP_RT_EXPORT void ulp_rt_dl_hook(void)
{
	static char reject[512];
	int saved_errno = errno, prev = ulp_last_state, refuse = 0;
	bool ours;

	if (!ulp_r_debug)
		return;
	ulp_last_state = ulp_r_debug->r_state;
	if (ulp_last_state != RT_CONSISTENT)
		return;
	/*
	 * The worker loads patches for ulpd, which waits for it: never ask ulpd
	 * then.  A forked child shares the channel but is not the process
	 * ulpd serves on it: as without ulpd.
	 */
	ours = ulp_hook_fd < 0 || getpid() != ulp_hook_pid ||
	       syscall(SYS_gettid) == __atomic_load_n(&ulp_rt_info.worker_tid, __ATOMIC_RELAXED);
	if (!ours) {
		ulp_event.kind = ULP_HOOK_GOING;
		ulp_event.nr = 0;
		for (size_t i = 0; i < ulp_nr_known; i++)
			if (ulp_watched(ulp_known[i].name) && !ulp_still_listed(&ulp_known[i]))
				ulp_event_add(ulp_known[i].name, ulp_known[i].l_addr, NULL);
		if (ulp_event.nr)
			ulp_hook_exchange(reject, sizeof(reject));
		ulp_event.kind = ULP_HOOK_COMING;
		ulp_event.nr = 0;
		/*
		 * New objects are coming only after RT_ADD: others were mapped
		 * before the hook saw the list, and their code may be running.
		 */
		for (const struct link_map *m = prev == RT_ADD ? ulp_r_debug->r_map : NULL; m;
		     m = m->l_next) {
			char name[256];

			if (ulp_is_known(m))
				continue;
			ulp_map_name(m, name, sizeof(name), true);
			if (ulp_watched(name))
				ulp_event_add(name, m->l_addr, m->l_name);
		}
		if (ulp_event.nr)
			refuse = ulp_hook_exchange(reject, sizeof(reject));
	}
	ulp_remember_all(true);
	errno = saved_errno;
	/*
	 * Only a dlopen between RT_ADD and relocation can still fail cleanly:
	 * the loader then unmaps what it mapped.  Does not return.
	 */
	if (refuse && prev == RT_ADD && ulp_signal_error)
		ulp_signal_error(0, NULL, NULL, reject);
}

static bool ulp_glibc_can_refuse(void)
{
	unsigned major = 0, minor = 0;

	return sscanf(gnu_get_libc_version(), "%u.%u", &major, &minor) == 2 && major == 2 &&
	       minor >= 35 && minor <= 40;
}

ULP_RT_EXPORT int ulp_rt_hook_open(uint64_t r_debug)
{
	int sv[2];

	if (!r_debug)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/*
	 * Resolved now: a lookup inside the hook could disturb dlerror().  Only
	 * where RT_CONSISTENT comes before relocation, inside the loader's
	 * error handling (glibc 2.35 to 2.40; 2.41 moved it), can a refusal
	 * fail the dlopen() cleanly; elsewhere a refused object loads
	 * unpatched.
	 */
	if (!ulp_signal_error && ulp_glibc_can_refuse())
		ulp_signal_error = (ulp_signal_error_fn)dlsym(RTLD_DEFAULT, "_dl_signal_error");
	if (!ulp_r_debug) {
		ulp_r_debug = (struct r_debug *)(uintptr_t)r_debug;
		ulp_remember_all(false);
	}
	if (ulp_hook_fd >= 0)
		close(ulp_hook_fd); /* a new ulpd replaces the old */
	ulp_hook_fd = sv[0];
	ulp_hook_pid = getpid();
	return sv[1];
}

void ulp_rt_hook_forget(void)
{
	if (ulp_hook_fd >= 0)
		close(ulp_hook_fd);
	ulp_hook_fd = -1;
}

ULP_RT_EXPORT int ulp_rt_hook_release(int fd)
{
	return close(fd) < 0 ? -errno : 0;
}
