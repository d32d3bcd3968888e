/* SPDX-License-Identifier: MIT */
/* What each control request does, and the targets ulpd remembers. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "engine.h"
#include "error.h"
#include "patch_file.h"

static struct ulp_target **ulpd_targets;
static size_t ulpd_nr_targets;

void ulpd_targets_free(void)
{
	for (size_t i = 0; i < ulpd_nr_targets; i++)
		ulp_target_free(ulpd_targets[i]);
	free(ulpd_targets);
	ulpd_targets = NULL;
	ulpd_nr_targets = 0;
}

/* Drop targets that exited or whose PID now belongs to another process. */
static void ulpd_targets_prune(void)
{
	size_t j = 0;

	for (size_t i = 0; i < ulpd_nr_targets; i++) {
		if (ulp_target_alive(ulpd_targets[i]))
			ulpd_targets[j++] = ulpd_targets[i];
		else
			ulp_target_free(ulpd_targets[i]);
	}
	ulpd_nr_targets = j;
}

static struct ulp_target *ulpd_target_lookup(pid_t pid)
{
	for (size_t i = 0; i < ulpd_nr_targets; i++)
		if (ulpd_targets[i]->pid == pid)
			return ulpd_targets[i];
	return NULL;
}

static int ulpd_target_get(pid_t pid, struct ulp_target **out)
{
	struct ulp_target *t, **n;
	int ret;

	ulpd_targets_prune();
	t = ulpd_target_lookup(pid);
	if (t) {
		*out = t;
		return 0;
	}
	ret = ulp_target_new(pid, &t);
	if (ret < 0)
		return ret;
	n = realloc(ulpd_targets, (ulpd_nr_targets + 1) * sizeof(*n));
	if (!n) {
		ulp_target_free(t);
		return ulp_errorf(-ENOMEM, "out of memory");
	}
	ulpd_targets = n;
	ulpd_targets[ulpd_nr_targets++] = t;
	*out = t;
	return 0;
}

static struct json_object *ulpd_reply_ok(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static struct json_object *ulpd_reply_ok(const char *fmt, ...)
{
	struct json_object *r = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "message", json_object_new_string(msg));
	return r;
}

static struct json_object *ulpd_reply_error(int err, const char *fallback)
{
	struct json_object *r = json_object_new_object();
	const char *msg = ulp_last_error();

	if (!msg[0])
		msg = fallback ? fallback : strerror(-err);
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	json_object_object_add(r, "errno", json_object_new_int(-err));
	return r;
}

static const char *ulpd_get_string(struct json_object *req, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int ulpd_get_int(struct json_object *req, const char *key, int64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_int))
		return -ENOENT;
	*out = json_object_get_int64(v);
	return 0;
}

/* Root may patch anything; others only processes of their own uid. */
static int ulpd_authorize(pid_t pid, uid_t uid)
{
	char path[64];
	struct stat st;

	if (uid == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &st) < 0)
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	if (st.st_uid != uid)
		return ulp_errorf(-EPERM, "permission denied: process %d belongs to another user",
				  pid);
	return 0;
}

static int ulpd_get_pid(struct json_object *req, uid_t uid, pid_t *pid)
{
	int64_t v;

	if (ulpd_get_int(req, "pid", &v) < 0)
		return ulp_errorf(-EINVAL, "missing \"pid\"");
	if (v <= 0 || v > 0x7fffffff)
		return ulp_errorf(-ESRCH, "no such process: %lld", (long long)v);
	*pid = (pid_t)v;
	return ulpd_authorize(*pid, uid);
}

static struct json_object *ulpd_apply(struct json_object *req, uid_t uid, bool check_only)
{
	const char *path = ulpd_get_string(req, "patch");
	struct ulp_apply_opts opts = { .check_only = check_only };
	struct ulp_transition_stats stats = { 0 };
	struct ulp_patch_info *info;
	struct ulp_target *t;
	int64_t timeout = 0;
	pid_t pid;
	int ret;

	if (!path)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "missing \"patch\""), NULL);
	/* Validate the file first: a bad patch is reported as such whatever the pid. */
	ret = ulp_patch_check_file(path, &info);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	if (check_only && !json_object_object_get_ex(req, "pid", NULL)) {
		struct json_object *r = ulpd_reply_ok("patch '%s' (%s) is valid", info->name, path);

		ulp_patch_info_free(info);
		return r;
	}
	ulp_patch_info_free(info);
	ret = ulpd_get_pid(req, uid, &pid);
	if (ret == 0)
		ret = ulpd_target_get(pid, &t);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	if (ulpd_get_int(req, "timeout", &timeout) == 0 && timeout > 0)
		opts.timeout_ms = (int)(timeout > 86400 ? 86400000 : timeout * 1000);
	ret = ulp_patch_apply(t, path, &opts, &stats);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	if (check_only) {
		ulp_patch_check_file(path, &info);
		struct json_object *r = ulpd_reply_ok("patch '%s' can be applied to process %d",
						      info ? info->name : "?", pid);
		ulp_patch_info_free(info);
		return r;
	}
	ulp_patch_check_file(path, &info);
	{
		const char *name = info ? info->name : "?";
		struct json_object *r =
			ret == 1 ? ulpd_reply_ok("patch '%s' is already applied to process %d",
						 name, pid)
				 : ulpd_reply_ok("applied patch '%s' to process %d", name, pid);

		json_object_object_add(r, "longest_stop_us",
				       json_object_new_int64((int64_t)stats.longest_stop_us));
		json_object_object_add(r, "transition_us",
				       json_object_new_int64((int64_t)stats.total_us));
		ulp_patch_info_free(info);
		return r;
	}
}

static struct json_object *ulpd_revert(struct json_object *req, uid_t uid)
{
	const char *name = ulpd_get_string(req, "name");
	struct ulp_transition_stats stats = { 0 };
	struct ulp_target *t;
	pid_t pid;
	int ret;

	if (!name)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "missing \"name\""), NULL);
	ret = ulpd_get_pid(req, uid, &pid);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	ulpd_targets_prune();
	t = ulpd_target_lookup(pid);
	if (!t) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return ulpd_reply_error(ulp_errorf(-ESRCH, "no such process: %d", pid),
						NULL);
		return ulpd_reply_error(
			ulp_errorf(-ENOENT, "patch '%s' is not applied to process %d", name, pid),
			NULL);
	}
	ret = ulp_patch_revert(t, name, &stats);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	return ulpd_reply_ok("reverted patch '%s' in process %d", name, pid);
}

static char *ulpd_hex(uint64_t v)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return buf;
}

static struct json_object *ulpd_target_json(struct ulp_target *t)
{
	struct json_object *jt = json_object_new_object(), *patches = json_object_new_array();

	json_object_object_add(jt, "pid", json_object_new_int(t->pid));
	json_object_object_add(jt, "exe", json_object_new_string(t->exe));
	for (size_t i = 0; i < t->nr_patches; i++) {
		struct ulp_applied_patch *ap = t->patches[i];
		struct json_object *jp = json_object_new_object(), *objs = json_object_new_array();

		json_object_object_add(jp, "name", json_object_new_string(ap->info->name));
		json_object_object_add(jp, "enabled", json_object_new_boolean(ap->enabled));
		json_object_object_add(jp, "transition",
				       json_object_new_boolean(ap->in_transition));
		json_object_object_add(jp, "replace", json_object_new_boolean(ap->info->replace));
		json_object_object_add(jp, "stack_order", json_object_new_int((int)i + 1));
		for (size_t o = 0; o < ap->nr_objs; o++) {
			struct ulp_applied_object *os = &ap->objs[o];
			struct json_object *jo = json_object_new_object(),
					   *funcs = json_object_new_array();

			json_object_object_add(jo, "name", json_object_new_string(os->name));
			json_object_object_add(jo, "patched", json_object_new_boolean(os->patched));
			for (size_t f = 0; f < os->nr_funcs; f++) {
				struct ulp_applied_func *fs = &os->funcs[f];
				struct json_object *jf = json_object_new_object();

				json_object_object_add(jf, "old_name",
						       json_object_new_string(fs->info->old_name));
				json_object_object_add(
					jf, "old_sympos",
					json_object_new_int64((int64_t)fs->info->old_sympos));
				json_object_object_add(
					jf, "old_addr",
					json_object_new_string(ulpd_hex(fs->old_addr)));
				json_object_object_add(
					jf, "new_addr",
					json_object_new_string(ulpd_hex(fs->new_addr)));
				json_object_array_add(funcs, jf);
			}
			json_object_object_add(jo, "functions", funcs);
			json_object_array_add(objs, jo);
		}
		json_object_object_add(jp, "objects", objs);
		json_object_array_add(patches, jp);
	}
	json_object_object_add(jt, "patches", patches);
	return jt;
}

static struct json_object *ulpd_status(struct json_object *req, uid_t uid)
{
	struct json_object *r, *procs = json_object_new_array();
	int64_t v;

	ulpd_targets_prune();
	if (ulpd_get_int(req, "pid", &v) == 0) {
		struct ulp_target *t;
		pid_t pid;
		int ret = ulpd_get_pid(req, uid, &pid);

		if (ret == 0 && !ulpd_target_lookup(pid) && kill(pid, 0) < 0 && errno == ESRCH)
			ret = ulp_errorf(-ESRCH, "no such process: %d", pid);
		if (ret == 0)
			ret = ulpd_target_get(pid, &t);
		if (ret < 0) {
			json_object_put(procs);
			return ulpd_reply_error(ret, NULL);
		}
		json_object_array_add(procs, ulpd_target_json(t));
	} else {
		for (size_t i = 0; i < ulpd_nr_targets; i++) {
			struct ulp_target *t = ulpd_targets[i];

			if (!t->nr_patches || ulpd_authorize(t->pid, uid) < 0)
				continue;
			json_object_array_add(procs, ulpd_target_json(t));
		}
	}
	r = ulpd_reply_ok("status");
	json_object_object_add(r, "processes", procs);
	return r;
}

static struct json_object *ulpd_log(struct json_object *req, uid_t uid)
{
	struct json_object *r, *lines = json_object_new_array();
	struct ulp_target *t;
	pid_t pid;
	int ret = ulpd_get_pid(req, uid, &pid);

	if (ret == 0)
		ret = ulpd_target_get(pid, &t);
	if (ret < 0) {
		json_object_put(lines);
		return ulpd_reply_error(ret, NULL);
	}
	for (size_t i = 0; i < t->nr_log; i++)
		json_object_array_add(lines, json_object_new_string(t->log[i]));
	r = ulpd_reply_ok("log");
	json_object_object_add(r, "lines", lines);
	return r;
}

struct json_object *ulpd_handle_request(struct json_object *req, uid_t uid)
{
	const char *cmd = ulpd_get_string(req, "cmd");

	ulp_error_clear();
	if (!cmd)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "malformed request: missing \"cmd\""),
					NULL);
	if (strcmp(cmd, "apply") == 0)
		return ulpd_apply(req, uid, false);
	if (strcmp(cmd, "check") == 0)
		return ulpd_apply(req, uid, true);
	if (strcmp(cmd, "revert") == 0)
		return ulpd_revert(req, uid);
	if (strcmp(cmd, "status") == 0)
		return ulpd_status(req, uid);
	if (strcmp(cmd, "log") == 0)
		return ulpd_log(req, uid);
	return ulpd_reply_error(ulp_errorf(-EINVAL, "unknown command '%s'", cmd), NULL);
}
