/* SPDX-License-Identifier: MIT */
/*
 * ulpd's view of a process, saved in the process (recovery.h).  The copy is
 * JSON: what ulpd cannot read back from the process itself (which patch
 * file, which functions, slots, generations, the operation under way) and
 * nothing it can (code bytes, thread states).  Prologues are rebuilt from
 * the original bytes saved with each function.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "engine.h"
#include "error.h"
#include "inject.h"
#include "memory.h"
#include "patch.h"
#include "process.h"
#include "procfs.h"
#include "recovery.h"
#include "replace.h"
#include "rt_abi.h"
#include "symbols.h"

#define ULP_SAVED_VERSION 1

/* Which ulpd saves: its control socket (ulp_recovery_set_owner). */
static char ulp_owner[4096];

/* Where the patch files a saved state may name by path are (ulpd's store). */
static char ulp_store_dir[4096];

/* The ulpd whose name saves go under: the main one, also in its forked workers. */
static pid_t ulp_owner_pid;

void ulp_recovery_set_owner(const char *id, const char *store_dir)
{
	snprintf(ulp_owner, sizeof(ulp_owner), "%s", id ? id : "");
	snprintf(ulp_store_dir, sizeof(ulp_store_dir), "%s", store_dir ? store_dir : "");
	ulp_owner_pid = getpid();
}

static pid_t ulp_self(void)
{
	return ulp_owner_pid ? ulp_owner_pid : getpid();
}

/* ulp_self()'s start time, read once per owner (saved at every step). */
static unsigned long long ulp_owner_start(void)
{
	static pid_t pid;
	static unsigned long long start;

	if (pid != ulp_self()) {
		pid = ulp_self();
		start = ulp_proc_start_time(pid);
	}
	return start;
}
/* the newest event-log lines kept with the state */
#define ULP_SAVED_LOG_LINES 256

bool ulp_fault_armed(const char *step)
{
	static const char *want;
	static long nth = 1, seen;
	static size_t len;
	static int init;

	if (!init) {
		const char *colon;

		init = 1;
		want = getenv("ULPD_FAULT");
		if (want && (colon = strchr(want, ':'))) {
			len = (size_t)(colon - want);
			nth = strtol(colon + 1, NULL, 10);
		} else if (want) {
			len = strlen(want);
		}
	}
	return want && strlen(step) == len && strncmp(step, want, len) == 0 && ++seen == nth;
}

void ulp_fault_point(const char *step)
{
	if (ulp_fault_armed(step)) {
		fprintf(stderr, "ulpd: ULPD_FAULT: killed at step '%s'\n", step);
		kill(getpid(), SIGKILL);
	}
}

/* FNV-1a: tells a torn copy from a whole one, nothing more. */
static uint64_t ulp_saved_sum(const char *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)data[i]) * 0x100000001b3ull;
	return h;
}

static void jadd_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void jadd_bool(struct json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

static uint64_t jget_u64(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_uint64(v) : 0;
}

static bool jget_bool(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

static const char *jget_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static struct json_object *jget_arr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_array)
		       ? v
		       : NULL;
}

static struct json_object *ulp_func_json(const struct ulp_applied_object *os,
					 const struct ulp_applied_func *fs)
{
	struct json_object *jf = json_object_new_object();
	const struct ulp_prologue *pr = &fs->prologue;
	char hex[2 * sizeof(pr->orig) + 1];

	jadd_u64(jf, "i", (uint64_t)(fs->info - os->info->funcs));
	jadd_u64(jf, "old_addr", fs->old_addr);
	jadd_u64(jf, "old_size", fs->old_size);
	jadd_u64(jf, "new_addr", fs->new_addr);
	jadd_u64(jf, "new_size", fs->new_size);
	jadd_u64(jf, "slot", fs->slot);
	jadd_bool(jf, "direct", fs->direct);
	jadd_u64(jf, "poff", pr->patch_addr - fs->old_addr);
	for (size_t i = 0; i < pr->displaced_len && i < sizeof(pr->orig); i++)
		snprintf(hex + 2 * i, 3, "%02x", pr->orig[i]);
	hex[2 * (pr->displaced_len < sizeof(pr->orig) ? pr->displaced_len : sizeof(pr->orig))] =
		'\0';
	json_object_object_add(jf, "orig", json_object_new_string(hex));
	return jf;
}

static struct json_object *ulp_patch_json(const struct ulp_applied_patch *ap, bool added)
{
	struct json_object *jp = json_object_new_object(), *objs = json_object_new_array();

	json_object_object_add(jp, "name", json_object_new_string(ap->info->name));
	json_object_object_add(jp, "path", json_object_new_string(ap->path ? ap->path : ""));
	jadd_u64(jp, "handle", ap->handle);
	json_object_object_add(jp, "memfd", json_object_new_int(ap->memfd));
	json_object_object_add(jp, "display",
			       json_object_new_string(ap->display ? ap->display : ""));
	jadd_u64(jp, "bias", ap->bias);
	jadd_bool(jp, "enabled", ap->enabled);
	jadd_bool(jp, "in_transition", ap->in_transition);
	jadd_bool(jp, "forced", ap->forced);
	jadd_bool(jp, "added", added);
	jadd_u64(jp, "gen", ap->gen);
	jadd_u64(jp, "entries", ap->entries);
	for (size_t o = 0; o < ap->nr_objs; o++) {
		const struct ulp_applied_object *os = &ap->objs[o];
		struct json_object *jo = json_object_new_object(), *funcs = json_object_new_array();

		jadd_bool(jo, "loaded", os->loaded);
		jadd_bool(jo, "patched", os->patched);
		jadd_bool(jo, "pue", os->post_unpatch_enabled);
		for (size_t f = 0; f < os->nr_funcs; f++)
			json_object_array_add(funcs, ulp_func_json(os, &os->funcs[f]));
		json_object_object_add(jo, "funcs", funcs);
		json_object_array_add(objs, jo);
	}
	json_object_object_add(jp, "objs", objs);
	return jp;
}

static struct json_object *ulp_target_json(const struct ulp_target *t)
{
	struct json_object *j = json_object_new_object(), *patches = json_object_new_array(),
			   *pages = json_object_new_array(), *log = json_object_new_array(), *op;
	size_t first = t->nr_log > ULP_SAVED_LOG_LINES ? t->nr_log - ULP_SAVED_LOG_LINES : 0;

	jadd_u64(j, "v", ULP_SAVED_VERSION);
	/* which ulpd: a live one keeps its processes (recovery.h) */
	jadd_u64(j, "owner_pid", (uint64_t)ulp_self());
	jadd_u64(j, "owner_start", ulp_owner_start());
	json_object_object_add(j, "owner", json_object_new_string(ulp_owner));
	jadd_u64(j, "log_seen", t->rt_log_seen);
	jadd_u64(j, "nr_tls_refs", t->nr_tls_refs);
	jadd_bool(j, "stop_all_logged", t->stop_all_logged);
	jadd_u64(j, "last_transition_us", t->last_transition_us);
	for (size_t i = 0; i < t->nr_slot_pages; i++) {
		struct json_object *pg = json_object_new_array();

		json_object_array_add(pg, json_object_new_uint64(t->slot_pages[i].addr));
		json_object_array_add(pg, json_object_new_uint64(t->slot_pages[i].used));
		json_object_array_add(pages, pg);
	}
	json_object_object_add(j, "slot_pages", pages);
	for (size_t i = first; i < t->nr_log; i++)
		json_object_array_add(log, json_object_new_string(t->log[i]));
	json_object_object_add(j, "log", log);
	for (size_t i = 0; i < t->nr_patches; i++)
		json_object_array_add(patches, ulp_patch_json(t->patches[i], true));
	if (t->applying)
		json_object_array_add(patches, ulp_patch_json(t->applying, false));
	json_object_object_add(j, "patches", patches);
	if (t->transition) {
		struct json_object *jt = json_object_new_object();
		size_t idx = 0;

		for (size_t i = 0; i < t->nr_patches; i++)
			if (t->patches[i] == t->transition->ap)
				idx = i;
		jadd_u64(jt, "patch", idx);
		jadd_bool(jt, "patching", t->transition->patching);
		jadd_u64(jt, "to_state", t->transition->to_state);
		jadd_u64(jt, "attempts", t->transition->attempts);
		json_object_object_add(j, "transition", jt);
	}
	op = json_object_new_object();
	json_object_object_add(op, "kind", json_object_new_string(t->op.kind));
	json_object_object_add(op, "patch", json_object_new_string(t->op.patch));
	json_object_object_add(op, "step", json_object_new_string(t->op.step));
	jadd_u64(op, "post_done", t->op.post_done);
	json_object_object_add(j, "op", op);
	return j;
}

static int ulp_recovery_write(struct ulp_target *t, struct ulp_process *p);

void (*ulp_target_warning_hook)(const struct ulp_target *t, const char *msg);

/* ULPD_SAVE_MAX=BYTES (tests only): a smaller room for the saved state. */
static size_t ulp_saved_max(void)
{
	static size_t max;

	if (!max) {
		const char *e = getenv("ULPD_SAVE_MAX");
		long v = e ? strtol(e, NULL, 10) : 0;

		max = v > 0 && v < ULP_RT_SAVED_SIZE ? (size_t)v : ULP_RT_SAVED_SIZE;
	}
	return max;
}

int ulp_recovery_save(struct ulp_target *t, struct ulp_process *p)
{
	struct ulp_error_stash pending;
	char msg[1280];
	int ret;

	/* best effort, and never in the way of an error being returned */
	ulp_error_stash(&pending);
	ret = ulp_recovery_write(t, p);
	/* said once, not at every step: a ulpd restarted now would not adopt it */
	if (ret < 0 && !t->save_failed && ulp_target_warning_hook) {
		snprintf(
			msg, sizeof(msg),
			"cannot save ulpd's state in process %d, a ulpd restarted after a crash would not adopt it: %s",
			t->pid, ulp_last_error());
		ulp_target_warning_hook(t, msg);
	}
	t->save_failed = ret < 0;
	ulp_error_unstash(&pending);
	return ret;
}

static int ulp_recovery_write(struct ulp_target *t, struct ulp_process *p)
{
	struct json_object *j;
	const char *text;
	uint64_t base, hdr[3];
	size_t len;
	int ret;

	if (!t->rt_info || !p || p->exited)
		return 0;
	j = ulp_target_json(t);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	len = strlen(text);
	if (len > ulp_saved_max()) {
		json_object_put(j);
		return ulp_errorf(-E2BIG,
				  "ulpd's state of process %d is too large to save (%zu bytes)",
				  p->pid, len);
	}
	/* the older copy is overwritten; its seq goes last, making it the newer */
	hdr[0] = ++t->saved_seq;
	hdr[1] = len;
	hdr[2] = ulp_saved_sum(text, len);
	base = t->rt_info + offsetof(struct ulp_rt_info, saved) +
	       (hdr[0] % 2) * sizeof(struct ulp_rt_saved);
	_Static_assert(offsetof(struct ulp_rt_saved, sum) ==
				       offsetof(struct ulp_rt_saved, len) + sizeof(uint64_t) &&
			       offsetof(struct ulp_rt_saved, data) ==
				       offsetof(struct ulp_rt_saved, sum) + sizeof(uint64_t),
		       "len, sum and data follow each other");
	/*
	 * One write for all, at every step of every apply: len, sum and the
	 * text, then seq, in that order (the kernel copies the pieces in
	 * order, so a ulpd killed in the middle leaves the new seq unwritten).
	 */
	{
		struct iovec local[3] = { { &hdr[1], 2 * sizeof(uint64_t) },
					  { (void *)text, len },
					  { &hdr[0], sizeof(uint64_t) } };
		struct iovec remote[2] = {
			{ (void *)(uintptr_t)(base + offsetof(struct ulp_rt_saved, len)),
			  2 * sizeof(uint64_t) + len },
			{ (void *)(uintptr_t)base, sizeof(uint64_t) }
		};
		ssize_t all = (ssize_t)(3 * sizeof(uint64_t) + len);

		ret = process_vm_writev(p->pid, local, 3, remote, 2, 0) == all ? 0 : -1;
	}
	/* process_vm_writev refuses what /proc/PID/mem may still allow */
	if (ret < 0) {
		ret = ulp_mem_write(p, base + offsetof(struct ulp_rt_saved, data), text, len);
		if (ret == 0)
			ret = ulp_mem_write(p, base + offsetof(struct ulp_rt_saved, len), &hdr[1],
					    2 * sizeof(uint64_t));
		if (ret == 0)
			ret = ulp_mem_write(p, base, &hdr[0], sizeof(uint64_t));
	}
	json_object_put(j);
	return ret;
}

void ulp_recovery_step(struct ulp_target *t, struct ulp_process *p, const char *kind,
		       const char *patch, const char *step)
{
	if (!step) {
		memset(&t->op, 0, sizeof(t->op));
	} else {
		snprintf(t->op.kind, sizeof(t->op.kind), "%s", kind);
		snprintf(t->op.patch, sizeof(t->op.patch), "%s", patch);
		snprintf(t->op.step, sizeof(t->op.step), "%s", step);
	}
	ulp_recovery_save(t, p);
	if (step)
		ulp_fault_point(step);
}

/* The newer whole copy, as text (to free), or NULL. */
static char *ulp_saved_read(struct ulp_target *t, struct ulp_process *p)
{
	struct ulp_rt_saved hdr[2];
	char *text = NULL;
	int best = -1;

	for (int i = 0; i < 2; i++) {
		uint64_t at = t->rt_info + offsetof(struct ulp_rt_info, saved) +
			      (uint64_t)i * sizeof(struct ulp_rt_saved);

		if (ulp_mem_read(p, at, &hdr[i], offsetof(struct ulp_rt_saved, data)) < 0)
			hdr[i].seq = 0;
	}
	for (int pass = 0; pass < 2 && !text; pass++) {
		/* the newer first, then the older if the newer is torn */
		int i = (hdr[0].seq >= hdr[1].seq) == (pass == 0) ? 0 : 1;
		uint64_t at = t->rt_info + offsetof(struct ulp_rt_info, saved) +
			      (uint64_t)i * sizeof(struct ulp_rt_saved) +
			      offsetof(struct ulp_rt_saved, data);

		if (!hdr[i].seq || hdr[i].len > ULP_RT_SAVED_SIZE)
			continue;
		text = malloc(hdr[i].len + 1);
		if (!text)
			return NULL;
		if (ulp_mem_read(p, at, text, hdr[i].len) < 0 ||
		    ulp_saved_sum(text, hdr[i].len) != hdr[i].sum) {
			free(text);
			text = NULL;
			continue;
		}
		text[hdr[i].len] = '\0';
		best = i;
	}
	if (best >= 0)
		t->saved_seq = hdr[best].seq;
	return text;
}

/*
 * The patch file: its path when it is still the file the process mapped,
 * else the process's own mapping of it (/proc/PID/map_files).
 */
/*
 * A file the saved state names: it comes from the process's memory, which
 * its owner may have written, so only a regular file, never a FIFO or a
 * device (an open that blocks or does something), never through a
 * symbolic link.
 */
static int ulp_saved_open(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

static int ulp_saved_patch_info(struct ulp_target *t, const char *path, uint64_t bias,
				struct ulp_patch_info **out)
{
	char maps[64], line[4352], mf[128];
	size_t dir_len = strlen(ulp_store_dir);
	int ret = -ENOENT, fd;
	FILE *f;

	/* by path only inside ulpd's own store, whatever the state says */
	if (dir_len && !strncmp(path, ulp_store_dir, dir_len) && path[dir_len] == '/' &&
	    !strstr(path, "/..") && (fd = ulp_saved_open(path)) >= 0) {
		ret = ulp_patch_info_read_fd(fd, path, out);
		close(fd);
	}
	if (ret == 0)
		return 0;
	ulp_error_clear();
	snprintf(maps, sizeof(maps), "/proc/%d/maps", t->pid);
	f = fopen(maps, "re");
	if (!f)
		return ulp_errorf(-errno, "cannot read %s: %s", maps, strerror(errno));
	ret = -ENOENT;
	while (ret == -ENOENT && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		int fd;

		if (sscanf(line, "%llx-%llx", &lo, &hi) != 2 || lo != bias)
			continue;
		snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", t->pid, lo, hi);
		fd = ulp_saved_open(mf);
		if (fd < 0)
			continue;
		ret = ulp_patch_info_read_fd(fd, path, out);
		close(fd);
	}
	fclose(f);
	if (ret < 0)
		return ulp_errorf(ret, "patch file %s of process %d is gone", path, t->pid);
	return 0;
}

static int ulp_saved_func(struct ulp_process *p, struct ulp_applied_object *os,
			  struct json_object *jf, struct ulp_applied_func *fs)
{
	const char *hex = jget_str(jf, "orig");
	uint8_t orig[sizeof(fs->prologue.orig)];
	size_t i = jget_u64(jf, "i"), n = 0;

	if (i >= os->info->nr_funcs || !hex)
		return ulp_errorf(-EPROTO, "saved state: bad function of object '%s'", os->name);
	fs->info = &os->info->funcs[i];
	fs->nop = os->nop;
	fs->old_addr = jget_u64(jf, "old_addr");
	fs->old_size = jget_u64(jf, "old_size");
	fs->new_addr = jget_u64(jf, "new_addr");
	fs->new_size = jget_u64(jf, "new_size");
	fs->slot = jget_u64(jf, "slot");
	fs->direct = jget_bool(jf, "direct");
	for (; hex[2 * n] && hex[2 * n + 1] && n < sizeof(orig); n++)
		sscanf(hex + 2 * n, "%2hhx", &orig[n]);
	return ulp_func_prologue_rebuild(p, fs, jget_u64(jf, "poff"), orig, n);
}

static int ulp_saved_patch(struct ulp_target *t, struct ulp_process *p, struct json_object *jp,
			   struct ulp_applied_patch **out)
{
	struct json_object *objs = jget_arr(jp, "objs");
	const char *path = jget_str(jp, "path");
	struct ulp_applied_patch *ap = calloc(1, sizeof(*ap));
	size_t nr_objs = objs ? json_object_array_length(objs) : 0;
	int ret;

	if (!ap)
		return ulp_errorf(-ENOMEM, "out of memory");
	ap->bias = jget_u64(jp, "bias");
	ret = ulp_saved_patch_info(t, path ? path : "", ap->bias, &ap->info);
	if (ret < 0) {
		free(ap);
		return ret;
	}
	ap->path = strdup(path ? path : "");
	ap->handle = jget_u64(jp, "handle");
	{
		struct json_object *m;

		ap->memfd =
			json_object_object_get_ex(jp, "memfd", &m) ? json_object_get_int(m) : -1;
	}
	ap->display = strdup(jget_str(jp, "display") ? jget_str(jp, "display") : "");
	ap->enabled = jget_bool(jp, "enabled");
	ap->in_transition = jget_bool(jp, "in_transition");
	ap->forced = jget_bool(jp, "forced");
	ap->gen = (unsigned char)jget_u64(jp, "gen");
	ap->entries = (unsigned char)jget_u64(jp, "entries");
	/* a replace's no-ops, against the patches installed before it, as when applied */
	if (nr_objs > ap->info->nr_objs && ap->info->replace)
		ret = ulp_replace_nops(t, ap->info, &ap->nop_infos, &ap->nr_nop_infos);
	if (ret == 0 && nr_objs != ap->info->nr_objs + ap->nr_nop_infos)
		ret = ulp_errorf(-EPROTO, "saved state: patch '%s' does not match its file",
				 ap->info->name);
	if (ret == 0 && !(ap->objs = calloc(nr_objs + 1, sizeof(*ap->objs))))
		ret = ulp_errorf(-ENOMEM, "out of memory");
	for (size_t o = 0; ret == 0 && o < nr_objs; o++) {
		struct json_object *jo = json_object_array_get_idx(objs, o),
				   *funcs = jget_arr(jo, "funcs");
		struct ulp_applied_object *os = &ap->objs[o];
		size_t nf = funcs ? json_object_array_length(funcs) : 0;

		ap->nr_objs++;
		os->nop = o >= ap->info->nr_objs;
		os->info = os->nop ? &ap->nop_infos[o - ap->info->nr_objs] : &ap->info->objs[o];
		os->name = strdup(ulp_obj_name(os->info));
		os->loaded = jget_bool(jo, "loaded");
		os->patched = jget_bool(jo, "patched");
		os->post_unpatch_enabled = jget_bool(jo, "pue");
		os->funcs = calloc(nf + 1, sizeof(*os->funcs));
		if (!os->name || !os->funcs) {
			ret = ulp_errorf(-ENOMEM, "out of memory");
			break;
		}
		for (size_t f = 0; ret == 0 && f < nf; f++) {
			ret = ulp_saved_func(p, os, json_object_array_get_idx(funcs, f),
					     &os->funcs[f]);
			if (ret == 0)
				os->nr_funcs++;
		}
	}
	if (ret < 0) {
		ulp_applied_patch_destroy(ap);
		return ret;
	}
	*out = ap;
	return 0;
}

/* Each function's versions, bottom to top, in the patches' order. */
static void ulp_saved_link_stacks(struct ulp_target *t)
{
	size_t n = t->nr_patches + (t->applying ? 1 : 0);

	for (size_t i = 0; i < n; i++) {
		struct ulp_applied_patch *ap = i < t->nr_patches ? t->patches[i] : t->applying;

		ULP_FOR_EACH_FUNC(ap, fs)
		{
			for (size_t j = i; j-- > 0 && !fs->below;) {
				ULP_FOR_EACH_FUNC(t->patches[j], b)
				{
					if (b->old_addr == fs->old_addr && !b->above) {
						fs->below = b;
						b->above = fs;
					}
				}
			}
		}
	}
}

/*
 * The saved state, parsed, if it is this ulpd's to take: -ENOENT, -EBUSY
 * (another's).  running_ok: a running ulpd of this socket may hold it (it
 * is about to stop: a package upgrade asks).
 */
static int ulp_saved_parse(struct ulp_target *t, struct ulp_process *p, bool running_ok,
			   struct json_object **out)
{
	char *text = ulp_saved_read(t, p);
	struct json_object *j;
	const char *id;
	pid_t owner;
	int ret = 0;

	if (!text)
		return -ENOENT;
	j = json_tokener_parse(text);
	free(text);
	if (!j || jget_u64(j, "v") != ULP_SAVED_VERSION) {
		json_object_put(j);
		return ulp_errorf(-EPROTO, "process %d: ulpd's saved state is not readable",
				  t->pid);
	}
	owner = (pid_t)jget_u64(j, "owner_pid");
	id = jget_str(j, "owner");
	/* another ulpd's (another socket): not ours, dead or alive */
	if (id && strcmp(id, ulp_owner) != 0)
		ret = ulp_errorf(-EBUSY, "process %d is managed by the ulpd of %s", t->pid, id);
	else if (!running_ok && owner != ulp_self() && owner > 0 &&
		 ulp_proc_start_time(owner) == jget_u64(j, "owner_start"))
		ret = ulp_errorf(-EBUSY, "process %d is managed by another ulpd (pid %d)", t->pid,
				 owner);
	if (ret < 0) {
		json_object_put(j);
		return ret;
	}
	*out = j;
	return 0;
}

int ulp_recovery_peek(struct ulp_target *t, struct ulp_symbols *syms)
{
	/* plain reads (process_vm_readv), no ptrace */
	struct ulp_process peek = { .pid = t->pid, .mem_fd = -1 };
	struct json_object *j;
	int ret = ulp_runtime_info_addr(syms, &t->rt_info);

	if (ret < 0)
		return ret;
	ret = ulp_saved_parse(t, &peek, false, &j);
	t->rt_info = 0;
	if (ret == 0)
		json_object_put(j);
	return ret;
}

static int ulp_recovery_load_from(struct ulp_target *t, struct ulp_process *p, bool running_ok);

int ulp_recovery_adoptable(pid_t pid)
{
	struct ulp_process peek = { .pid = pid, .mem_fd = -1 };
	struct ulp_symbols *syms = NULL;
	struct ulp_target *t = NULL;
	uint32_t hdr[2];
	int ret;

	/* an earlier process's message must not pass for this one's */
	ulp_error_clear();
	if (!ulp_proc_maps_has_code(pid, ULP_RT_MAPPED))
		return 1; /* no runtime: never patched (or gone) */
	ret = ulp_symbols_open(pid, &syms);
	if (ret == 0)
		ret = ulp_target_new(pid, &t);
	if (ret == 0 && ulp_runtime_info_addr(syms, &t->rt_info) < 0)
		ret = ulp_errorf(-EPROTO, "process %d has a ulp runtime without %s", pid,
				 ULP_RT_INFO_SYMBOL);
	_Static_assert(offsetof(struct ulp_rt_info, abi) == sizeof(uint32_t),
		       "magic, then abi, as every runtime has them");
	if (ret == 0)
		ret = ulp_mem_read(&peek, t->rt_info, hdr, sizeof(hdr));
	if (ret == 0 && (hdr[0] != ULP_RT_MAGIC || hdr[1] != ULP_RT_ABI))
		ret = ulp_errorf(
			-EPROTO,
			"process %d has the runtime of another ulp version (ABI %u, this ulpd's %u)",
			pid, hdr[1], ULP_RT_ABI);
	if (ret == 0) {
		/* rebuilt as a takeover would, patch files included, but only read */
		ret = ulp_recovery_load_from(t, &peek, true);
		if (ret == -EBUSY) {
			ret = 1; /* another socket's ulpd's */
			ulp_error_clear();
		} else if (ret == -ENOENT && !ulp_last_error()[0])
			ret = ulp_errorf(
				-ENOENT,
				"process %d has ulp's runtime but no saved state (its patches would be lost)",
				pid);
	}
	if (t)
		ulp_target_free(t);
	ulp_symbols_close(syms);
	return ret;
}

int ulp_recovery_load(struct ulp_target *t, struct ulp_process *p)
{
	return ulp_recovery_load_from(t, p, false);
}

static int ulp_recovery_load_from(struct ulp_target *t, struct ulp_process *p, bool running_ok)
{
	struct json_object *j, *patches, *log, *pages, *jt, *op;
	int ret = ulp_saved_parse(t, p, running_ok, &j);

	if (ret < 0)
		return ret;
	t->rt_log_seen = jget_u64(j, "log_seen");
	t->nr_tls_refs = (uint32_t)jget_u64(j, "nr_tls_refs");
	t->stop_all_logged = jget_bool(j, "stop_all_logged");
	t->last_transition_us = jget_u64(j, "last_transition_us");
	log = jget_arr(j, "log");
	{
		/* the process's own past: not new events for the journal (and not trusted) */
		void (*hook)(const struct ulp_target *, const char *) = ulp_target_log_hook;

		ulp_target_log_hook = NULL;
		for (size_t i = 0; log && i < json_object_array_length(log); i++)
			ulp_target_log(t, "%s",
				       json_object_get_string(json_object_array_get_idx(log, i)));
		ulp_target_log_hook = hook;
	}
	pages = jget_arr(j, "slot_pages");
	for (size_t i = 0; pages && i < json_object_array_length(pages); i++) {
		struct json_object *pg = json_object_array_get_idx(pages, i);
		struct ulp_slot_page *n =
			realloc(t->slot_pages, (t->nr_slot_pages + 1) * sizeof(*n));

		if (!n) {
			ret = ulp_errorf(-ENOMEM, "out of memory");
			break;
		}
		t->slot_pages = n;
		n[t->nr_slot_pages].addr = json_object_get_uint64(json_object_array_get_idx(pg, 0));
		n[t->nr_slot_pages].used =
			(uint32_t)json_object_get_uint64(json_object_array_get_idx(pg, 1));
		t->nr_slot_pages++;
	}
	patches = jget_arr(j, "patches");
	for (size_t i = 0; ret == 0 && patches && i < json_object_array_length(patches); i++) {
		struct json_object *jp = json_object_array_get_idx(patches, i);
		struct ulp_applied_patch *ap = NULL;

		ret = ulp_saved_patch(t, p, jp, &ap);
		if (ret == 0 && jget_bool(jp, "added"))
			ret = ulp_target_add_patch(t, ap);
		else if (ret == 0)
			t->applying = ap;
	}
	if (ret == 0)
		ulp_saved_link_stacks(t);
	if (ret == 0 && json_object_object_get_ex(j, "transition", &jt)) {
		size_t idx = jget_u64(jt, "patch");
		struct ulp_pending_transition *pt = calloc(1, sizeof(*pt));

		if (!pt || idx >= t->nr_patches) {
			free(pt);
			ret = ulp_errorf(-EPROTO, "process %d: saved transition is not readable",
					 t->pid);
		} else {
			pt->ap = t->patches[idx];
			pt->patching = jget_bool(jt, "patching");
			pt->to_state = (unsigned char)jget_u64(jt, "to_state");
			pt->attempts = (unsigned)jget_u64(jt, "attempts");
			pt->start_us = ulp_now_us();
			t->transition = pt;
		}
	}
	if (ret == 0 && json_object_object_get_ex(j, "op", &op)) {
		snprintf(t->op.kind, sizeof(t->op.kind), "%s", jget_str(op, "kind") ?: "");
		snprintf(t->op.patch, sizeof(t->op.patch), "%s", jget_str(op, "patch") ?: "");
		snprintf(t->op.step, sizeof(t->op.step), "%s", jget_str(op, "step") ?: "");
		t->op.post_done = (unsigned)jget_u64(op, "post_done");
	}
	json_object_put(j);
	return ret;
}
