/* SPDX-License-Identifier: MIT */
#include "dlhook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "codegen.h"
#include "engine.h"
#include "error.h"
#include "inject.h"
#include "memory.h"
#include "poke.h"
#include "process.h"
#include "procfs.h"
#include "symbols.h"

#define ULP_LDSO_SONAME "ld-linux-x86-64.so.2"

/* The bytes after _dl_debug_state's `ret` must be padding we may overwrite. */
static bool ulp_is_padding(const uint8_t *b, size_t n)
{
	static const uint8_t nop_bytes[] = { 0x90, 0x66, 0x2e, 0x0f, 0x1f,
					     0x84, 0x00, 0x40, 0x44, 0x80 };

	for (size_t i = 0; i < n; i++)
		if (!memchr(nop_bytes, b[i], sizeof(nop_bytes)))
			return false;
	return true;
}

static int ulp_dlhook_channel(struct ulp_target *t, struct ulp_process *p, uint64_t r_debug)
{
	uint64_t fn_open, fn_release, tfd, r;
	int fd, ret;

	ret = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, fn_hook_open),
			       &fn_open);
	if (ret == 0)
		ret = ulp_mem_read_u64(
			p, t->rt_info + offsetof(struct ulp_rt_info, fn_hook_release), &fn_release);
	if (ret == 0)
		ret = ulp_runtime_call(t, p, fn_open, &r_debug, 1, &tfd);
	if (ret < 0)
		return ret;
	if ((int)tfd < 0)
		return ulp_errorf((int)tfd, "the runtime cannot open the loader hook's channel: %s",
				  strerror(-(int)tfd));
	/* ulpd takes the other end: then if ulpd goes, the hook reads EOF */
	fd = ulp_proc_take_fd(p->pid, (int)tfd);
	if (fd < 0)
		ret = ulp_errorf(fd, "cannot take the loader hook's channel from process %d: %s",
				 p->pid, strerror(-fd));
	tfd &= 0xffffffff;
	ulp_runtime_call(t, p, fn_release, &tfd, 1, &r);
	if (ret < 0)
		return ret;
	t->hook_fd = fd;
	t->r_debug = r_debug;
	return 0;
}

int ulp_dlhook_reopen(struct ulp_target *t, struct ulp_process *p)
{
	return t->hook_fd >= 0 || !t->r_debug ? 0 : ulp_dlhook_channel(t, p, t->r_debug);
}

int ulp_dlhook_ensure(struct ulp_target *t, struct ulp_process *p, struct ulp_symbols *syms)
{
	struct ulp_symbol state_fn, r_debug;
	struct ulp_poke k = { 0 };
	uint8_t code[16];
	uint64_t entry;
	int ret;

	if (t->hook_fd >= 0)
		return 0;
	ret = ulp_symbols_resolve(syms, ULP_LDSO_SONAME, "_dl_debug_state", 0, &state_fn);
	if (ret == 0)
		ret = ulp_symbols_resolve(syms, ULP_LDSO_SONAME, "_r_debug", 0, &r_debug);
	if (ret == 0)
		ret = ulp_mem_read_u64(p, t->rt_info + offsetof(struct ulp_rt_info, hook_entry),
				       &entry);
	if (ret == 0)
		ret = ulp_mem_read(p, state_fn.addr, code, sizeof(code));
	if (ret < 0)
		return ulp_error_prefix(ret, "cannot find the loader's debugger interface");
	k.addr = state_fn.addr;
	k.emulate_to = entry;
	k.len = ulp_encode_jmp(k.addr, entry, k.bytes);
	/*
	 * An int3 a ulpd that died while writing the jump left: the jump
	 * with its first byte missing, or the 'ret' still to be replaced.
	 */
	if (code[0] == 0xcc && memcmp(code + 1, k.bytes + 1, k.len - 1) == 0) {
		ret = ulp_mem_write(p, k.addr, k.bytes, 1);
		code[0] = k.bytes[0];
	} else if (code[0] == 0xcc && ulp_is_padding(code + 1, k.len - 1)) {
		code[0] = 0xc3;
	}
	if (ret < 0)
		return ret;
	/* already in place: a runtime a previous ulpd hooked */
	if (memcmp(code, k.bytes, k.len) != 0 &&
	    (code[0] != 0xc3 || !ulp_is_padding(code + 1, k.len - 1)))
		return ulp_errorf(
			-ENOTSUP,
			"the loader's _dl_debug_state() in process %d is not a bare 'ret' with padding",
			p->pid);
	/*
	 * The jump first: the hook does nothing until the channel opens, and
	 * the list it then starts from already holds whatever was loaded
	 * meanwhile.
	 */
	if (memcmp(code, k.bytes, k.len) != 0)
		ret = ulp_text_poke(t, p, &k, 1, NULL);
	if (ret == 0)
		ret = ulp_dlhook_channel(t, p, r_debug.addr);
	if (ret < 0 && t->hook_fd >= 0) {
		close(t->hook_fd);
		t->hook_fd = -1;
	}
	return ret;
}

int ulp_dlhook_watch(struct ulp_target *t, struct ulp_process *p)
{
	char watch[ULP_RT_WATCH_SIZE];
	size_t len = 0;

	if (!t->rt_info)
		return 0;
	for (size_t i = 0; i < t->nr_patches; i++) {
		const struct ulp_applied_patch *ap = t->patches[i];

		for (size_t o = 0; o < ap->nr_objs; o++) {
			const char *name = ap->objs[o].info->name;
			size_t n = name ? strlen(name) + 1 : 0;

			if (!n || len + n + 1 > sizeof(watch))
				continue; /* main is always there; too many names: not watched */
			memcpy(watch + len, name, n);
			len += n;
		}
	}
	watch[len++] = '\0';
	return ulp_mem_write(p, t->rt_info + offsetof(struct ulp_rt_info, watch), watch, len);
}

int ulp_hook_send(int fd, const struct ulp_hook_cmd *cmd)
{
	ssize_t n;

	do
		n = send(fd, cmd, sizeof(*cmd), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*cmd) ? 0 : -EPIPE;
}

int ulp_hook_recv(int fd, struct ulp_process *p, void *buf, size_t len, int timeout_ms)
{
	uint64_t deadline = ulp_now_us() + (uint64_t)timeout_ms * 1000u;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		/* the hook's thread may stop for us (a signal) while it works */
		if (p)
			ulp_process_poll(p, 0);
		if (poll(&pfd, 1, 10) > 0) {
			n = recv(fd, buf, len, MSG_DONTWAIT);
			if (n == (ssize_t)len)
				return 0;
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			return -EPIPE;
		}
		if (ulp_now_us() > deadline)
			return -ETIMEDOUT;
	}
}

void ulp_dlhook_serve(struct ulp_target *t)
{
	struct ulp_hook_event ev;
	struct ulp_hook_cmd done = { .op = ULP_HOOK_DONE };
	ssize_t n;

	if (t->hook_fd < 0)
		return;
	memset(&ev, 0, sizeof(ev));
	n = recv(t->hook_fd, &ev, sizeof(ev), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close(t->hook_fd); /* the process is gone */
		t->hook_fd = -1;
		return;
	}
	if ((size_t)n < offsetof(struct ulp_hook_event, objs) || ev.nr > ULP_HOOK_MAX_OBJS ||
	    (size_t)n < offsetof(struct ulp_hook_event, objs) + ev.nr * sizeof(ev.objs[0])) {
		ulp_hook_send(t->hook_fd, &done);
		return;
	}
	for (uint32_t i = 0; i < ev.nr; i++) {
		ev.objs[i].name[sizeof(ev.objs[i].name) - 1] = '\0';
		ev.objs[i].path[sizeof(ev.objs[i].path) - 1] = '\0';
	}
	if (ev.kind == ULP_HOOK_COMING &&
	    ulp_objects_coming(t, &ev, done.msg, sizeof(done.msg)) == 1)
		done.op = ULP_HOOK_REJECT;
	else if (ev.kind == ULP_HOOK_GOING)
		ulp_objects_going(t, &ev);
	ulp_hook_send(t->hook_fd, &done);
}
