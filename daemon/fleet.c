/* SPDX-License-Identifier: MIT */
/*
 * Every running process of one executable at once (ulpctl apply/revert
 * --exe): the processes are those whose executable is the file given (same
 * file, or same build-id when the file was replaced since they started);
 * they are patched by a few forked copies of ulpd in parallel, each saving
 * what it did in the processes it touched (libpatch/recovery.h), and this
 * ulpd then takes them over from that saved state, as after a restart.
 */
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "auth.h"
#include "daemon.h"
#include "elf_read.h"
#include "engine.h"
#include "error.h"
#include "fleet.h"
#include "procfs.h"

/* Copies of ulpd working at once: enough to keep the CPUs busy while targets run. */
#define ULPD_FLEET_WORKERS_MAX 16

struct ulpd_fleet_entry {
	pid_t pid;
	char result[16]; /* patched, reverted, pending, already, skipped, failed */
	char error[512];
	uint64_t rt_info, r_debug; /* the worker's t->rt_info and t->r_debug */
};

/* Does pid run the executable exe (st: its stat, id: its build-id or NULL)? */
static int ulpd_runs_exe(pid_t pid, const char *exe, const struct stat *st, const char *id,
			 char *why, size_t len)
{
	char link[64], target[4096], *have = NULL;
	struct stat pst;
	ssize_t n;
	int same;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	if (stat(link, &pst) == 0 && pst.st_dev == st->st_dev && pst.st_ino == st->st_ino)
		return 1;
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	/* the file was replaced since the process started: the same program only by build-id */
	if (strncmp(target, exe, strlen(exe)) != 0 ||
	    (target[strlen(exe)] && strcmp(target + strlen(exe), " (deleted)") != 0))
		return 0;
	if (ulp_elf_file_build_id(link, &have) < 0 || !id || !have || strcmp(id, have) != 0) {
		snprintf(why, len,
			 "its executable is another build of %s (build-id %s, the file: %s)", exe,
			 have ? have : "none", id ? id : "none");
		same = -1;
	} else {
		same = 1;
	}
	free(have);
	return same;
}

/* One forked ulpd: its share of the processes, one JSON line each on out. */
static void ulpd_fleet_worker(struct ulpd_fleet_entry *e, size_t n, size_t first, size_t step,
			      const struct ulpd_fleet_op *op, int out)
{
	for (size_t i = first; i < n; i += step) {
		struct json_object *j = json_object_new_object();
		struct ulp_apply_opts opts = { .display = op->display, .budget_ms = op->budget_ms };
		struct ulp_target *t;
		const char *res;
		int ret = ulpd_target_for_worker(e[i].pid, &t);

		if (ret == 0 && op->apply)
			ret = ulp_patch_apply(t, op->patch, &opts, NULL);
		else if (ret == 0)
			ret = ulp_patch_revert(t, op->name, NULL);
		if (ret < 0)
			res = ret == -ENOENT && !op->apply ? "skipped" : "failed";
		else if (ret == ULP_PENDING)
			res = "pending";
		else if (ret == ULP_ALREADY)
			res = "already";
		else
			res = op->apply ? "patched" : "reverted";
		json_object_object_add(j, "i", json_object_new_int64((int64_t)i));
		json_object_object_add(j, "result", json_object_new_string(res));
		/* where ulpd finds what it takes over without attaching again */
		if (ret >= 0 && t->rt_info) {
			json_object_object_add(j, "rt_info", json_object_new_uint64(t->rt_info));
			json_object_object_add(j, "r_debug", json_object_new_uint64(t->r_debug));
		}
		if (ret < 0)
			json_object_object_add(j, "error",
					       json_object_new_string(ulp_last_error()));
		ulp_error_clear();
		dprintf(out, "%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
	}
}

static void ulpd_fleet_read(FILE *f, struct ulpd_fleet_entry *e, size_t n)
{
	size_t cap = 0;
	char *line = NULL;

	/* a line may be long: an error message quoting paths */
	while (getline(&line, &cap, f) > 0) {
		struct json_object *j = json_tokener_parse(line), *v;
		int64_t i = -1;

		if (j && json_object_object_get_ex(j, "i", &v))
			i = json_object_get_int64(v);
		if (i >= 0 && (size_t)i < n) {
			if (json_object_object_get_ex(j, "result", &v))
				snprintf(e[i].result, sizeof(e[i].result), "%s",
					 json_object_get_string(v));
			if (json_object_object_get_ex(j, "error", &v))
				snprintf(e[i].error, sizeof(e[i].error), "%s",
					 json_object_get_string(v));
			if (json_object_object_get_ex(j, "rt_info", &v))
				e[i].rt_info = json_object_get_uint64(v);
			if (json_object_object_get_ex(j, "r_debug", &v))
				e[i].r_debug = json_object_get_uint64(v);
		}
		json_object_put(j);
	}
	free(line);
}

/* Fork the workers, collect their lines, wait for them all. */
static void ulpd_fleet_run(struct ulpd_fleet_entry *e, size_t n, const struct ulpd_fleet_op *op)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t k = (size_t)(cpus > 0 ? 8 * cpus : 8);
	FILE *in[ULPD_FLEET_WORKERS_MAX] = { 0 };
	pid_t kids[ULPD_FLEET_WORKERS_MAX];
	size_t started = 0;

	if (k > ULPD_FLEET_WORKERS_MAX)
		k = ULPD_FLEET_WORKERS_MAX;
	if (k > n)
		k = n;
	for (size_t w = 0; w < k; w++) {
		int fds[2];

		if (pipe2(fds, O_CLOEXEC) < 0)
			break;
		kids[w] = fork();
		if (kids[w] == 0) {
			/* a copy of ulpd that only works: it must not touch the socket or clients
			 */
			close(fds[0]);
			signal(SIGTERM, SIG_DFL);
			ulpd_fleet_worker(e, n, w, k, op, fds[1]);
			_exit(0);
		}
		close(fds[1]);
		if (kids[w] < 0) {
			close(fds[0]);
			break;
		}
		in[w] = fdopen(fds[0], "re");
		started++;
	}
	for (size_t w = 0; w < started; w++) {
		if (in[w]) {
			ulpd_fleet_read(in[w], e, n);
			fclose(in[w]);
		}
		while (waitpid(kids[w], NULL, 0) < 0 && errno == EINTR)
			;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].result[0])
			continue;
		snprintf(e[i].result, sizeof(e[i].result), "failed");
		snprintf(e[i].error, sizeof(e[i].error), "no answer from ulpd's worker");
	}
}

/* The processes of exe the client may patch (others it does not see). */
static int ulpd_fleet_find(const char *exe, const struct ucred *peer, struct ulpd_fleet_entry **out,
			   size_t *nr)
{
	struct ulpd_fleet_entry *e = NULL;
	size_t n = 0, nr_pids;
	char *id = NULL;
	struct stat st;
	pid_t *pids;
	int ret;

	if (exe[0] != '/' || stat(exe, &st) < 0)
		return ulp_errorf(-ENOENT, "%s: %s", exe,
				  exe[0] != '/' ? "not an absolute path" : strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ulp_errorf(-EINVAL, "%s: not a regular file", exe);
	ret = ulp_proc_pids(&pids, &nr_pids);
	if (ret < 0)
		return ret;
	ulp_elf_file_build_id(exe, &id);
	for (size_t i = 0; i < nr_pids; i++) {
		pid_t pid = pids[i];
		char why[512] = "";
		struct ulpd_fleet_entry *g;
		int runs;

		if (pid == getpid())
			continue;
		runs = ulpd_runs_exe(pid, exe, &st, id, why, sizeof(why));
		if (!runs || ulpd_may_patch(pid, peer) < 0) {
			ulp_error_clear();
			continue;
		}
		g = realloc(e, (n + 1) * sizeof(*e));
		if (!g)
			break;
		e = g;
		memset(&e[n], 0, sizeof(e[n]));
		e[n].pid = pid;
		if (runs < 0) {
			snprintf(e[n].result, sizeof(e[n].result), "skipped");
			snprintf(e[n].error, sizeof(e[n].error), "%s", why);
		}
		n++;
	}
	free(pids);
	free(id);
	*out = e;
	*nr = n;
	return 0;
}

int ulpd_fleet_count(const char *exe, const struct ucred *peer, size_t *nr)
{
	struct ulpd_fleet_entry *e = NULL;
	int ret = ulpd_fleet_find(exe, peer, &e, nr);

	free(e);
	return ret;
}

struct json_object *ulpd_fleet(const char *exe, const struct ucred *peer,
			       const struct ulpd_fleet_op *op)
{
	struct json_object *r, *procs = json_object_new_array();
	struct ulpd_fleet_entry *e = NULL, *todo;
	size_t n = 0, m = 0, done = 0, skipped = 0, failed = 0, pending = 0;
	const char *what = op->name;
	int ret = ulpd_fleet_find(exe, peer, &e, &n);

	if (ret < 0) {
		json_object_put(procs);
		return ulpd_reply_error(ret, NULL);
	}
	/* the ones to work on, in one array the workers share (skipped ones are done) */
	todo = calloc(n ? n : 1, sizeof(*todo));
	for (size_t i = 0; todo && i < n; i++)
		if (!e[i].result[0])
			todo[m++] = e[i];
	if (todo && m)
		ulpd_fleet_run(todo, m, op);
	for (size_t i = 0, j = 0; todo && i < n; i++)
		if (!e[i].result[0])
			e[i] = todo[j++];
	free(todo);
	for (size_t i = 0; i < n; i++) {
		struct json_object *jp = json_object_new_object();

		/* what a worker changed is in the process: ulpd takes it over */
		if (!strcmp(e[i].result, "patched") || !strcmp(e[i].result, "reverted") ||
		    !strcmp(e[i].result, "pending"))
			ulpd_target_readopt(e[i].pid, e[i].rt_info, e[i].r_debug);
		if (!strcmp(e[i].result, "failed"))
			failed++;
		else if (!strcmp(e[i].result, "skipped"))
			skipped++;
		else if (!strcmp(e[i].result, "pending"))
			pending++;
		else
			done++;
		json_object_object_add(jp, "pid", json_object_new_int(e[i].pid));
		json_object_object_add(jp, "result", json_object_new_string(e[i].result));
		if (e[i].error[0])
			json_object_object_add(jp, "error", json_object_new_string(e[i].error));
		json_object_array_add(procs, jp);
	}
	free(e);
	r = ulpd_reply_ok(
		"%s patch '%s' %s %zu of %zu process(es) of %s (%zu in transition, %zu skipped, %zu failed)",
		op->apply ? "applied" : "reverted", what, op->apply ? "to" : "in", done + pending,
		n, exe, pending, skipped, failed);
	json_object_object_add(r, "processes", procs);
	json_object_object_add(r, "matched", json_object_new_int64((int64_t)n));
	json_object_object_add(r, "failed", json_object_new_int64((int64_t)failed));
	/* the asked-for state everywhere it could be reached: skipped ones are not errors */
	json_object_object_add(r, "ok", json_object_new_boolean(failed == 0));
	if (failed)
		json_object_object_add(r, "error",
				       json_object_new_string(json_object_get_string(
					       json_object_object_get(r, "message"))));
	return r;
}
