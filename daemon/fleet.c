/* SPDX-License-Identifier: MIT */
/*
 * Every running process of one executable at once (ulpctl apply/revert
 * --exe): the processes are those whose executable is the file given (same
 * file, or same build-id when the file was replaced since they started);
 * they are patched by a few forked copies of ulpd in parallel, each saving
 * what it did in the processes it touched (libpatch/recovery.h), and this
 * ulpd then takes them over from that saved state, as after a restart.
 *
 * Such a request runs in the background of ulpd's loop: while workers
 * patch a thousand processes for seconds, ulpd goes on answering other
 * clients, serving loader hooks and --persist starts, and completing
 * transitions.  Only the processes a request is still working on are out
 * of reach (ulpd_fleet_busy); --exe requests run one after the other.
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
#include <time.h>
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
/* --exe requests waiting for the one running: beyond that, the client is told to retry */
#define ULPD_FLEET_QUEUE_MAX 64
/* ULPD_FLEET_HOLD (tests): how long a worker waits for the file before it starts anyway */
#define ULPD_FLEET_HOLD_MAX_MS 60000

struct ulpd_fleet_entry {
	pid_t pid;
	char result[16]; /* patched, reverted, pending, already, skipped, failed; "" while busy */
	char error[512];
	uint64_t rt_info, r_debug; /* the worker's t->rt_info and t->r_debug */
};

/* One forked ulpd and what it has written so far of its current line. */
struct ulpd_fleet_worker {
	pid_t pid;
	int fd; /* read end of its pipe; -1 once it closed it */
	char *buf;
	size_t len, cap;
};

/* Index of a busy process, by pid (sorted) for ulpd_fleet_busy(). */
struct ulpd_fleet_pid {
	pid_t pid;
	size_t i;
};

struct ulpd_fleet_job {
	int client; /* where the reply goes */
	struct ucred peer;
	struct ulpd_fleet_op op; /* its strings are the job's copies */
	char *exe;
	struct ulpd_fleet_entry *e; /* every process found, skipped ones included */
	size_t n;
	size_t *todo; /* the indexes in e the workers work on */
	size_t m;
	struct ulpd_fleet_pid *by_pid; /* the todo ones, sorted */
	struct ulpd_fleet_worker w[ULPD_FLEET_WORKERS_MAX];
	size_t nr_workers;
};

/* The running request first, then those waiting for it. */
static struct ulpd_fleet_job *ulpd_fleet_jobs[1 + ULPD_FLEET_QUEUE_MAX];
static size_t ulpd_fleet_nr_jobs;

/* The request whose workers are at work, or NULL (it is the first in line). */
static struct ulpd_fleet_job *ulpd_fleet_running(void)
{
	return ulpd_fleet_nr_jobs && ulpd_fleet_jobs[0]->nr_workers ? ulpd_fleet_jobs[0] : NULL;
}

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

/* ULPD_FLEET_HOLD=FILE: tests hold the workers until FILE exists, to look at ulpd meanwhile. */
static void ulpd_fleet_hold(void)
{
	const char *file = getenv("ULPD_FLEET_HOLD");
	struct timespec pause = { 0, 10 * 1000 * 1000 };

	for (int ms = 0; file && *file && ms < ULPD_FLEET_HOLD_MAX_MS; ms += 10) {
		if (access(file, F_OK) == 0)
			return;
		nanosleep(&pause, NULL);
	}
}

/* One forked ulpd: its share of the processes, one JSON line each on out. */
static void ulpd_fleet_worker(const struct ulpd_fleet_job *job, size_t first, size_t step, int out)
{
	const struct ulpd_fleet_op *op = &job->op;

	ulpd_fleet_hold();
	for (size_t k = first; k < job->m; k += step) {
		size_t i = job->todo[k];
		struct json_object *j = json_object_new_object();
		struct ulp_apply_opts opts = { .display = op->display, .budget_ms = op->budget_ms };
		struct ulp_target *t;
		const char *res;
		int ret = ulpd_target_for_worker(job->e[i].pid, &t);

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

/*
 * One line of a worker: that process is done with, and ulpd takes over
 * what the worker changed in it (the process is no longer busy).
 */
static void ulpd_fleet_line(struct ulpd_fleet_job *job, const char *line)
{
	struct json_object *j = json_tokener_parse(line), *v;
	struct ulpd_fleet_entry *e;
	int64_t i = -1;

	if (j && json_object_object_get_ex(j, "i", &v))
		i = json_object_get_int64(v);
	if (i < 0 || (size_t)i >= job->n || job->e[i].result[0]) {
		json_object_put(j);
		return;
	}
	e = &job->e[i];
	if (json_object_object_get_ex(j, "error", &v))
		snprintf(e->error, sizeof(e->error), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(j, "rt_info", &v))
		e->rt_info = json_object_get_uint64(v);
	if (json_object_object_get_ex(j, "r_debug", &v))
		e->r_debug = json_object_get_uint64(v);
	/* the result last: with it, the process is no longer the job's */
	if (json_object_object_get_ex(j, "result", &v))
		snprintf(e->result, sizeof(e->result), "%s", json_object_get_string(v));
	else
		snprintf(e->result, sizeof(e->result), "failed");
	json_object_put(j);
	if (!strcmp(e->result, "patched") || !strcmp(e->result, "reverted") ||
	    !strcmp(e->result, "pending"))
		ulpd_target_readopt(e->pid, e->rt_info, e->r_debug);
}

/* Take what the worker wrote; at its end, reap it.  False once it is gone. */
static bool ulpd_fleet_worker_read(struct ulpd_fleet_job *job, struct ulpd_fleet_worker *w)
{
	for (;;) {
		ssize_t got;
		char *nl;

		if (w->len + 1 >= w->cap) {
			size_t cap = w->cap ? 2 * w->cap : 4096;
			char *nb = realloc(w->buf, cap);

			if (!nb)
				break;
			w->buf = nb;
			w->cap = cap;
		}
		got = read(w->fd, w->buf + w->len, w->cap - w->len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return true;
		if (got <= 0)
			break;
		w->len += (size_t)got;
		w->buf[w->len] = '\0';
		/* a line may be long: an error message quoting paths */
		while ((nl = memchr(w->buf, '\n', w->len))) {
			*nl = '\0';
			ulpd_fleet_line(job, w->buf);
			w->len -= (size_t)(nl + 1 - w->buf);
			memmove(w->buf, nl + 1, w->len);
		}
	}
	close(w->fd);
	w->fd = -1;
	free(w->buf);
	w->buf = NULL;
	while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
		;
	return false;
}

static int ulpd_fleet_pid_cmp(const void *a, const void *b)
{
	const struct ulpd_fleet_pid *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Fork the workers; they report through their pipes (none: fork failed). */
static void ulpd_fleet_start(struct ulpd_fleet_job *job)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t k = (size_t)(cpus > 0 ? 8 * cpus : 8);

	if (k > ULPD_FLEET_WORKERS_MAX)
		k = ULPD_FLEET_WORKERS_MAX;
	if (k > job->m)
		k = job->m;
	for (size_t w = 0; w < k; w++) {
		int fds[2];
		pid_t kid;

		if (pipe2(fds, O_CLOEXEC) < 0)
			break;
		kid = fork();
		if (kid == 0) {
			/* a copy of ulpd that only works: no socket, no client of the parent's */
			close(fds[0]);
			signal(SIGTERM, SIG_DFL);
			ulpd_close_parent_fds();
			ulpd_fleet_worker(job, w, k, fds[1]);
			_exit(0);
		}
		close(fds[1]);
		if (kid < 0) {
			close(fds[0]);
			break;
		}
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		job->w[job->nr_workers++] = (struct ulpd_fleet_worker){ .pid = kid, .fd = fds[0] };
	}
}

static void ulpd_fleet_job_free(struct ulpd_fleet_job *job)
{
	free(job->e);
	free(job->todo);
	free(job->by_pid);
	free(job->exe);
	free((char *)job->op.patch);
	free((char *)job->op.display);
	free((char *)job->op.name);
	free(job);
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

/* Every process dealt with: the per-process summary. */
static struct json_object *ulpd_fleet_reply(struct ulpd_fleet_job *job)
{
	struct json_object *r, *procs = json_object_new_array();
	size_t done = 0, skipped = 0, failed = 0, pending = 0;
	const struct ulpd_fleet_op *op = &job->op;

	for (size_t i = 0; i < job->n; i++) {
		struct ulpd_fleet_entry *e = &job->e[i];
		struct json_object *jp = json_object_new_object();

		if (!e->result[0]) {
			snprintf(e->result, sizeof(e->result), "failed");
			snprintf(e->error, sizeof(e->error), "no answer from ulpd's worker");
		}
		if (!strcmp(e->result, "failed"))
			failed++;
		else if (!strcmp(e->result, "skipped"))
			skipped++;
		else if (!strcmp(e->result, "pending"))
			pending++;
		else
			done++;
		json_object_object_add(jp, "pid", json_object_new_int(e->pid));
		json_object_object_add(jp, "result", json_object_new_string(e->result));
		if (e->error[0])
			json_object_object_add(jp, "error", json_object_new_string(e->error));
		json_object_array_add(procs, jp);
	}
	r = ulpd_reply_ok(
		"%s patch '%s' %s %zu of %zu process(es) of %s (%zu in transition, %zu skipped, %zu failed)",
		op->apply ? "applied" : "reverted", op->name, op->apply ? "to" : "in",
		done + pending, job->n, job->exe, pending, skipped, failed);
	json_object_object_add(r, "processes", procs);
	json_object_object_add(r, "matched", json_object_new_int64((int64_t)job->n));
	json_object_object_add(r, "failed", json_object_new_int64((int64_t)failed));
	/* the asked-for state everywhere it could be reached: skipped ones are not errors */
	json_object_object_add(r, "ok", json_object_new_boolean(failed == 0));
	if (failed)
		json_object_object_add(r, "error",
				       json_object_new_string(json_object_get_string(
					       json_object_object_get(r, "message"))));
	if (op->persist)
		json_object_object_add(r, "persist", json_object_new_boolean(1));
	return r;
}

/* Answer the first request in line with r, and forget it. */
static void ulpd_fleet_answer_first(struct json_object *r)
{
	struct ulpd_fleet_job *job = ulpd_fleet_jobs[0];

	ulpd_send_reply(job->client, r);
	ulpd_fleet_job_free(job);
	ulpd_fleet_nr_jobs--;
	memmove(ulpd_fleet_jobs, ulpd_fleet_jobs + 1,
		ulpd_fleet_nr_jobs * sizeof(ulpd_fleet_jobs[0]));
}

/*
 * Start the first waiting request: find its processes now (not when it
 * was queued), and answer at once when there is nothing to do.
 */
static void ulpd_fleet_next(void)
{
	while (!ulpd_fleet_running() && ulpd_fleet_nr_jobs) {
		struct ulpd_fleet_job *job = ulpd_fleet_jobs[0];
		int ret;

		ulp_error_clear();
		ret = ulpd_fleet_find(job->exe, &job->peer, &job->e, &job->n);
		if (ret == 0 && job->n) {
			job->todo = calloc(job->n, sizeof(*job->todo));
			job->by_pid = calloc(job->n, sizeof(*job->by_pid));
			if (!job->todo || !job->by_pid)
				ret = ulp_errorf(-ENOMEM, "out of memory");
		}
		for (size_t i = 0; ret == 0 && i < job->n; i++) {
			if (job->e[i].result[0])
				continue;
			job->by_pid[job->m] = (struct ulpd_fleet_pid){ job->e[i].pid, i };
			job->todo[job->m++] = i;
		}
		if (ret == 0 && job->m) {
			qsort(job->by_pid, job->m, sizeof(*job->by_pid), ulpd_fleet_pid_cmp);
			ulpd_fleet_start(job);
			if (job->nr_workers)
				return;
		}
		/* no worker could start: each process says so (ulpd_fleet_reply) */
		ulpd_fleet_answer_first(ret < 0 ? ulpd_reply_error(ret, NULL)
						: ulpd_fleet_reply(job));
	}
}

/* The running request's workers are all gone: answer it, start the next. */
static void ulpd_fleet_finish(void)
{
	ulpd_fleet_answer_first(ulpd_fleet_reply(ulpd_fleet_jobs[0]));
	ulpd_fleet_next();
}

static char *ulpd_strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct json_object *ulpd_fleet(const char *exe, const struct ucred *peer,
			       const struct ulpd_fleet_op *op, int fd)
{
	struct ulpd_fleet_job *job;

	if (ulpd_fleet_nr_jobs >= sizeof(ulpd_fleet_jobs) / sizeof(ulpd_fleet_jobs[0]))
		return ulpd_reply_error(
			ulp_errorf(
				-EAGAIN,
				"%zu --exe requests are already waiting for ulpd; try again later",
				ulpd_fleet_nr_jobs - 1),
			NULL);
	job = calloc(1, sizeof(*job));
	if (job) {
		job->client = fd;
		job->peer = *peer;
		job->op = *op;
		job->exe = strdup(exe);
		job->op.patch = ulpd_strdup_or_null(op->patch);
		job->op.display = ulpd_strdup_or_null(op->display);
		job->op.name = ulpd_strdup_or_null(op->name);
	}
	if (!job || !job->exe || (op->patch && !job->op.patch) ||
	    (op->display && !job->op.display) || (op->name && !job->op.name)) {
		if (job)
			ulpd_fleet_job_free(job);
		return ulpd_reply_error(ulp_errorf(-ENOMEM, "out of memory"), NULL);
	}
	ulpd_fleet_jobs[ulpd_fleet_nr_jobs++] = job;
	ulpd_fleet_next();
	return NULL;
}

size_t ulpd_fleet_fds(int *fds, size_t max)
{
	struct ulpd_fleet_job *job = ulpd_fleet_running();
	size_t n = 0;

	for (size_t w = 0; job && w < job->nr_workers; w++)
		if (job->w[w].fd >= 0 && n < max)
			fds[n++] = job->w[w].fd;
	return n;
}

void ulpd_fleet_ready(int fd)
{
	struct ulpd_fleet_job *job = ulpd_fleet_running();
	bool left = false;

	for (size_t w = 0; job && w < job->nr_workers; w++) {
		if (job->w[w].fd == fd)
			ulpd_fleet_worker_read(job, &job->w[w]);
		left |= job->w[w].fd >= 0;
	}
	if (job && !left)
		ulpd_fleet_finish();
}

bool ulpd_fleet_busy(pid_t pid)
{
	struct ulpd_fleet_pid key = { .pid = pid }, *hit;
	struct ulpd_fleet_job *job = ulpd_fleet_running();

	if (!job)
		return false;
	hit = bsearch(&key, job->by_pid, job->m, sizeof(*job->by_pid), ulpd_fleet_pid_cmp);
	return hit && !job->e[hit->i].result[0];
}

int ulpd_fleet_busy_error(pid_t pid)
{
	return ulp_errorf(-EBUSY,
			  "process %d is being worked on by a running --exe request for %s; "
			  "try again once it has answered",
			  pid, ulpd_fleet_jobs[0]->exe);
}

bool ulpd_fleet_uses(const char *path)
{
	for (size_t i = 0; i < ulpd_fleet_nr_jobs; i++)
		if (ulpd_fleet_jobs[i]->op.patch && !strcmp(ulpd_fleet_jobs[i]->op.patch, path))
			return true;
	return false;
}

struct json_object *ulpd_fleet_status(const struct ucred *peer)
{
	struct json_object *all = json_object_new_array();

	for (size_t i = 0; i < ulpd_fleet_nr_jobs; i++) {
		struct ulpd_fleet_job *job = ulpd_fleet_jobs[i];
		bool running = job == ulpd_fleet_running();
		struct json_object *j;
		size_t done = 0;

		/* another user's request is theirs to see */
		if (peer->uid != 0 && peer->uid != job->peer.uid)
			continue;
		j = json_object_new_object();
		json_object_object_add(j, "exe", json_object_new_string(job->exe));
		json_object_object_add(j, "action",
				       json_object_new_string(job->op.apply ? "apply" : "revert"));
		json_object_object_add(j, "patch", json_object_new_string(job->op.name));
		json_object_object_add(j, "state",
				       json_object_new_string(running ? "running" : "waiting"));
		if (running) {
			for (size_t k = 0; k < job->m; k++)
				done += job->e[job->todo[k]].result[0] != '\0';
			json_object_object_add(j, "done", json_object_new_int64((int64_t)done));
			json_object_object_add(j, "total", json_object_new_int64((int64_t)job->m));
		}
		json_object_array_add(all, j);
	}
	return all;
}

void ulpd_fleet_close_clients(void)
{
	for (size_t i = 0; i < ulpd_fleet_nr_jobs; i++)
		close(ulpd_fleet_jobs[i]->client);
}

void ulpd_fleet_shutdown(void)
{
	struct ulpd_fleet_job *job = ulpd_fleet_running();

	/* the running one to its end: its workers are changing processes */
	if (job) {
		for (size_t w = 0; w < job->nr_workers; w++) {
			if (job->w[w].fd < 0)
				continue;
			fcntl(job->w[w].fd, F_SETFL, 0);
			ulpd_fleet_worker_read(job, &job->w[w]);
		}
		ulpd_fleet_answer_first(ulpd_fleet_reply(job));
	}
	while (ulpd_fleet_nr_jobs) {
		ulp_error_clear();
		ulpd_fleet_answer_first(ulpd_reply_error(
			ulp_errorf(-ESHUTDOWN, "ulpd stopped before this --exe request started; "
					       "nothing was changed"),
			NULL));
	}
}
