/* SPDX-License-Identifier: MIT */
/* What each control request does, and the targets ulpd remembers. */
#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "fleet.h"
#include "persist.h"
#include "store.h"
#include "daemon.h"
#include "journal.h"
#include "engine.h"
#include "error.h"
#include "dlhook.h"
#include "elf_cache.h"
#include "inject.h"
#include "patch_file.h"
#include "process.h"
#include "procfs.h"
#include "recovery.h"
#include "rt_abi.h"

static struct ulp_target **ulpd_targets;
static size_t ulpd_nr_targets;

/* A client waiting for a transition to reach the state it asked for. */
struct ulpd_waiter {
	int fd;
	struct ulp_target *t;
	char name[256]; /* the patch */
	bool to_patched; /* apply (true) or revert */
	uint64_t deadline_us; /* apply --timeout: reverse the transition then; 0 = none */
	long timeout_s;
	struct ulp_transition_stats stats;
};

static struct ulpd_waiter *ulpd_waiters;
static size_t ulpd_nr_waiters;

void ulpd_targets_free(void)
{
	for (size_t i = 0; i < ulpd_nr_waiters; i++)
		close(ulpd_waiters[i].fd);
	free(ulpd_waiters);
	ulpd_waiters = NULL;
	ulpd_nr_waiters = 0;
	for (size_t i = 0; i < ulpd_nr_targets; i++)
		ulp_target_free(ulpd_targets[i]);
	free(ulpd_targets);
	ulpd_targets = NULL;
	ulpd_nr_targets = 0;
}

static void ulpd_waiters_settle(void);
static void ulpd_waiters_forget_target(struct ulp_target *t);
static bool ulpd_has_runtime(pid_t pid);

/* Drop targets that exited or whose PID now belongs to another process. */
static void ulpd_targets_prune(void)
{
	size_t j = 0;

	ulpd_waiters_settle(); /* nobody waits on a target about to be dropped */

	for (size_t i = 0; i < ulpd_nr_targets; i++) {
		struct ulp_target *t = ulpd_targets[i];

		/*
		 * A process that executed another program has nothing of ulp
		 * left; one a worker is changing is taken over again after it.
		 */
		if (ulpd_fleet_busy(t->pid) ||
		    (ulp_target_alive(t) && (!t->rt_info || ulpd_has_runtime(t->pid)))) {
			ulpd_targets[j++] = t;
			continue;
		}
		/* it may have died after the settle above: nobody keeps a pointer */
		ulpd_waiters_forget_target(ulpd_targets[i]);
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

static void ulpd_schedule(struct ulp_target *t);
static bool ulpd_get_bool(struct json_object *req, const char *key, bool dflt);

/* ulp's runtime is mapped: an earlier ulpd patched the process (or its parent). */
static bool ulpd_has_runtime(pid_t pid)
{
	return ulp_proc_maps_has_code(pid, ULP_RT_MAPPED);
}

/*
 * A target for pid: the one ulpd knows, else rebuilt from the state an
 * earlier ulpd saved in the process, else a new one.
 */
static int ulpd_target_make(pid_t pid, struct ulp_target **out)
{
	int ret;

	if (ulpd_has_runtime(pid)) {
		ret = ulp_target_adopt(pid, out);
		if (ret == 0) {
			ulpd_log(LOG_NOTICE, "adopt", pid, NULL,
				 "process %d: adopted with %zu patch(es)%s", pid,
				 (*out)->nr_patches,
				 (*out)->transition ? ", one in transition" : "");
			ulpd_schedule(*out);
			return 0;
		}
		/*
		 * Another ulpd's, or a saved view ulpd cannot rebuild: a fresh
		 * target would save over it, and the patches it records could
		 * never be reverted.
		 */
		if (ret != -ENOENT) {
			ulpd_log(LOG_WARNING, "adopt-failed", pid, NULL, "process %d: %s", pid,
				 ulp_last_error());
			return ret;
		}
		ulp_error_clear();
	}
	return ulp_target_new(pid, out);
}

static int ulpd_target_add(struct ulp_target *t)
{
	struct ulp_target **n = realloc(ulpd_targets, (ulpd_nr_targets + 1) * sizeof(*n));

	if (!n)
		return ulp_errorf(-ENOMEM, "out of memory");
	ulpd_targets = n;
	ulpd_targets[ulpd_nr_targets++] = t;
	return 0;
}

/*
 * Take pid over from the state a ulpd of this socket saved in it (why: how
 * ulpd came to it, for the journal).  False if it is not such a process.
 */
static bool ulpd_adopt(pid_t pid, const char *why)
{
	struct ulp_target *t;
	int ret = ulp_target_adopt(pid, &t);

	if (ret < 0) {
		/* another ulpd's, or never patched by one (nothing saved) */
		if (ret != -EBUSY && ret != -ENOENT)
			ulpd_log(LOG_WARNING, "adopt-failed", pid, NULL, "process %d: %s", pid,
				 ulp_last_error());
		ulp_error_clear();
		return false;
	}
	ulpd_log(LOG_NOTICE, "adopt", pid, NULL, "process %d%s: adopted with %zu patch(es)%s", pid,
		 why, t->nr_patches, t->transition ? ", one in transition" : "");
	ulpd_schedule(t);
	if (ulpd_target_add(t) < 0)
		ulp_target_free(t);
	return true;
}

/* Every process with ulp's runtime mapped that ulpd does not know yet and want() accepts. */
static bool ulpd_adopt_each(bool (*want)(pid_t), const char *why)
{
	bool any = false;
	pid_t *pids;
	size_t n;

	if (ulp_proc_pids(&pids, &n) < 0) {
		ulp_error_clear();
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (pids[i] == getpid() || ulpd_target_lookup(pids[i]) ||
		    ulpd_fleet_busy(pids[i]) || (want && !want(pids[i])) ||
		    !ulpd_has_runtime(pids[i]))
			continue;
		any |= ulpd_adopt(pids[i], why);
	}
	free(pids);
	return any;
}

static bool ulpd_child_of_target(pid_t pid)
{
	return ulpd_target_lookup(ulp_proc_parent(pid)) != NULL;
}

/*
 * Children forked by patched processes keep the patched code: they are
 * taken over (from the state their parent's memory held) so that status
 * lists them and they can be reverted on their own; grandchildren too.
 */
static void ulpd_adopt_children(void)
{
	for (int pass = 0; pass < 8 && ulpd_adopt_each(ulpd_child_of_target, " (a child)"); pass++)
		;
}

void ulpd_adopt_all(void)
{
	ulpd_adopt_each(NULL, "");
}

int ulpd_can_adopt_all(const struct ulpd_config *cfg)
{
	size_t n, ours = 0, refused = 0;
	char store[4200];
	pid_t *pids;
	int ret;

	snprintf(store, sizeof(store), "%s/patches", cfg->state_dir);
	ulp_recovery_set_owner(cfg->socket_path, store);
	ret = ulp_proc_pids(&pids, &n);
	if (ret < 0) {
		fprintf(stderr, "ulpd: %s\n", ulp_last_error());
		return ret;
	}
	for (size_t i = 0; i < n; i++) {
		if (pids[i] == getpid())
			continue;
		ret = ulp_recovery_adoptable(pids[i]);
		if (ret == 1 || ret == -ESRCH)
			continue; /* not this socket's, or gone */
		ours++;
		if (ret < 0) {
			refused++;
			printf("process %d: cannot be taken over: %s\n", pids[i], ulp_last_error());
		}
		ulp_error_clear();
	}
	free(pids);
	printf("%zu process(es) patched by the ulpd of %s: %s\n", ours, cfg->socket_path,
	       refused ? "not all can be taken over by this ulpd"
		       : "this ulpd can take over every one");
	return refused ? -EPROTO : 0;
}

int ulpd_target_for_worker(pid_t pid, struct ulp_target **out)
{
	struct ulp_target *t = ulpd_target_lookup(pid);

	if (t) {
		*out = t;
		return 0;
	}
	return ulpd_target_make(pid, out);
}

void ulpd_target_readopt(pid_t pid, uint64_t rt_info, uint64_t r_debug)
{
	struct ulp_target *old = ulpd_target_lookup(pid), *t;

	if (old)
		for (size_t i = 0; i < ulpd_nr_targets; i++)
			if (ulpd_targets[i] == old)
				ulpd_targets[i] = ulpd_targets[--ulpd_nr_targets];
	if (ulp_target_adopt_at_rest(pid, rt_info, r_debug, &t) < 0) {
		/* its patches stay, out of reach until a request names it again */
		ulpd_log(LOG_WARNING, "adopt-failed", pid, NULL, "process %d: %s", pid,
			 ulp_last_error());
		ulp_error_clear();
		if (old) {
			ulpd_waiters_forget_target(old);
			ulp_target_free(old);
		}
		return;
	}
	/* a client waiting on a transition there waits on what the worker left */
	for (size_t i = 0; old && i < ulpd_nr_waiters; i++)
		if (ulpd_waiters[i].t == old)
			ulpd_waiters[i].t = t;
	ulp_target_free(old);
	ulpd_schedule(t);
	if (ulpd_target_add(t) < 0)
		ulp_target_free(t);
	ulp_error_clear();
}

int ulpd_target_get(pid_t pid, struct ulp_target **out)
{
	struct ulp_target *t, **n;
	int ret;

	ulpd_targets_prune();
	if (ulpd_fleet_busy(pid))
		return ulpd_fleet_busy_error(pid);
	t = ulpd_target_lookup(pid);
	if (t) {
		*out = t;
		return 0;
	}
	ret = ulpd_target_make(pid, &t);
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

struct json_object *ulpd_reply_ok(const char *fmt, ...)
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

struct json_object *ulpd_reply_error(int err, const char *fallback)
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

/* The request's "pid", once the client may patch it (auth.h). */
static int ulpd_get_pid(struct json_object *req, const struct ucred *peer, pid_t *pid)
{
	int64_t v;

	if (ulpd_get_int(req, "pid", &v) < 0)
		return ulp_errorf(-EINVAL, "missing \"pid\"");
	if (v <= 0 || v > 0x7fffffff)
		return ulp_errorf(-ESRCH, "no such process: %lld", (long long)v);
	*pid = (pid_t)v;
	return ulpd_may_patch(*pid, peer);
}

/* Retries of a stalled transition: quick at first, then every second (the kernel's pace). */
#define ULPD_RETRY_FIRST_MS 10
#define ULPD_RETRY_MAX_MS 1000
#define ULPD_RETRY_BUDGET_MS 100
/*
 * How often the idle loop looks for patched processes that exited or
 * executed another program.  Each look reads two /proc files of every
 * target: with a thousand of them, doing it every second cost ulpd 5% of
 * a CPU.  A request that names a process, and every status, looks at once.
 */
#define ULPD_PRUNE_INTERVAL_US (10 * 1000000ull)

static void ulpd_schedule(struct ulp_target *t)
{
	struct ulp_pending_transition *pt = t->transition;

	if (!pt)
		return;
	pt->retry_ms = pt->retry_ms ? pt->retry_ms * 2 : ULPD_RETRY_FIRST_MS;
	if (pt->retry_ms > ULPD_RETRY_MAX_MS)
		pt->retry_ms = ULPD_RETRY_MAX_MS;
	pt->next_attempt_us = ulp_now_us() + (uint64_t)pt->retry_ms * 1000u;
}

static void ulpd_waiter_add(int fd, struct ulp_target *t, const char *name, bool to_patched,
			    long timeout_s, const struct ulp_transition_stats *stats)
{
	struct ulpd_waiter *n = realloc(ulpd_waiters, (ulpd_nr_waiters + 1) * sizeof(*n));

	if (!n) {
		ulpd_send_reply(fd, ulpd_reply_error(ulp_errorf(-ENOMEM, "out of memory"), NULL));
		return;
	}
	ulpd_waiters = n;
	n = &ulpd_waiters[ulpd_nr_waiters++];
	memset(n, 0, sizeof(*n));
	n->fd = fd;
	n->t = t;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->to_patched = to_patched;
	n->timeout_s = timeout_s;
	n->deadline_us = timeout_s > 0 ? ulp_now_us() + (uint64_t)timeout_s * 1000000u : 0;
	n->stats = *stats;
	ulpd_schedule(t);
}

static void ulpd_waiter_drop(size_t i)
{
	memmove(&ulpd_waiters[i], &ulpd_waiters[i + 1],
		(ulpd_nr_waiters - i - 1) * sizeof(ulpd_waiters[0]));
	ulpd_nr_waiters--;
}

static void ulpd_add_stats(struct json_object *r, const struct ulp_transition_stats *stats)
{
	json_object_object_add(r, "longest_stop_us",
			       json_object_new_int64((int64_t)stats->longest_stop_us));
	json_object_object_add(r, "transition_us", json_object_new_int64((int64_t)stats->total_us));
}

static struct json_object *ulpd_done_reply(struct ulp_target *t, const char *name, bool to_patched,
					   const struct ulp_transition_stats *stats)
{
	struct json_object *r =
		to_patched ? ulpd_reply_ok("applied patch '%s' to process %d", name, t->pid)
			   : ulpd_reply_ok("reverted patch '%s' in process %d", name, t->pid);
	struct ulp_transition_stats whole = *stats;

	/* the whole transition, background attempts included */
	whole.total_us = t->last_transition_us;
	ulpd_add_stats(r, &whole);
	return r;
}

/*
 * Where a waiter stands: a reply when its wait is over, NULL while the
 * transition it waits for goes on.
 */
static struct json_object *ulpd_waiter_outcome(struct ulpd_waiter *w)
{
	struct ulp_target *t = w->t;
	struct ulp_applied_patch *ap;
	struct ulp_pending_transition *pt;

	if (!ulp_target_alive(t))
		return ulpd_reply_error(
			ulp_errorf(-ESRCH, "process %d exited during the transition", t->pid),
			NULL);
	ap = ulp_target_find_patch(t, w->name);
	pt = t->transition;
	if (pt && pt->ap == ap && pt->patching == w->to_patched)
		return NULL; /* still on its way */
	if (w->to_patched && ap && ap->enabled && !ap->in_transition)
		return ulpd_done_reply(t, w->name, true, &w->stats);
	if (!w->to_patched && !ap)
		return ulpd_done_reply(t, w->name, false, &w->stats);
	if (w->to_patched)
		return ulpd_reply_error(
			ulp_errorf(
				-ECANCELED,
				"patch '%s' was reverted before its transition in process %d completed",
				w->name, t->pid),
			NULL);
	return ulpd_reply_error(
		ulp_errorf(-ECANCELED,
			   "patch '%s' was applied again before its revert in process %d completed",
			   w->name, t->pid),
		NULL);
}

/* apply --timeout expired: reverse, and say who blocked. */
static struct json_object *ulpd_waiter_expire(struct ulpd_waiter *w)
{
	char blockers[4096], why[512];
	struct ulp_transition_stats stats = { 0 };
	size_t n = ulp_transition_blockers(w->t, blockers, sizeof(blockers));
	int ret;

	ulp_error_clear();
	ret = ulp_patch_revert(w->t, w->name, &stats);
	if (ret < 0)
		snprintf(why, sizeof(why), "; reversing it failed: %s", ulp_last_error());
	else if (ret == ULP_PENDING)
		snprintf(why, sizeof(why),
			 "; it is being reversed (ulpd completes that in the background)");
	else
		snprintf(why, sizeof(why), "; it was reversed");
	ulpd_schedule(w->t);
	return ulpd_reply_error(
		ulp_errorf(
			-ETIMEDOUT,
			"patch '%s' did not complete its transition in process %d within %ld s%s. %s%s",
			w->name, w->t->pid, w->timeout_s, why,
			n ? "Blocked by: " : "No thread reported as blocking yet.",
			n ? blockers : ""),
		NULL);
}

/* Answer every waiter whose wait is over. */
static void ulpd_waiters_settle(void)
{
	for (size_t i = 0; i < ulpd_nr_waiters;) {
		struct ulpd_waiter *w = &ulpd_waiters[i];
		struct json_object *r = ulpd_waiter_outcome(w);

		if (!r && w->deadline_us && ulp_now_us() >= w->deadline_us)
			r = ulpd_waiter_expire(w);
		if (!r) {
			i++;
			continue;
		}
		ulpd_send_reply(w->fd, r);
		ulpd_waiter_drop(i);
	}
}

static void ulpd_waiters_forget_target(struct ulp_target *t)
{
	for (size_t i = 0; i < ulpd_nr_waiters;) {
		if (ulpd_waiters[i].t != t) {
			i++;
			continue;
		}
		/* t is no longer alive: the outcome is its exit */
		ulpd_send_reply(ulpd_waiters[i].fd, ulpd_waiter_outcome(&ulpd_waiters[i]));
		ulpd_waiter_drop(i);
	}
}

void ulpd_waiters_close_fds(void)
{
	for (size_t i = 0; i < ulpd_nr_waiters; i++)
		close(ulpd_waiters[i].fd);
}

size_t ulpd_waiting_fds(int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ulpd_nr_waiters && n < max; i++)
		fds[n++] = ulpd_waiters[i].fd;
	return n;
}

void ulpd_client_gone(int fd)
{
	for (size_t i = 0; i < ulpd_nr_waiters; i++) {
		if (ulpd_waiters[i].fd != fd)
			continue;
		/* the transition goes on, as in the kernel; only the wait ends */
		close(fd);
		ulpd_waiter_drop(i);
		return;
	}
}

size_t ulpd_hook_fds(int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ulpd_nr_targets && n < max; i++)
		if (ulpd_targets[i]->hook_fd >= 0 && !ulpd_fleet_busy(ulpd_targets[i]->pid))
			fds[n++] = ulpd_targets[i]->hook_fd;
	return n;
}

void ulpd_hook_ready(int fd)
{
	for (size_t i = 0; i < ulpd_nr_targets; i++) {
		if (ulpd_targets[i]->hook_fd != fd)
			continue;
		ulp_error_clear();
		ulp_dlhook_serve(ulpd_targets[i]);
		ulpd_waiters_settle();
		return;
	}
}

static uint64_t ulpd_last_prune_us;

int ulpd_tick(void)
{
	uint64_t now = ulp_now_us(), next = UINT64_MAX;

	for (size_t i = 0; i < ulpd_nr_targets; i++) {
		struct ulp_target *t = ulpd_targets[i];
		struct ulp_pending_transition *pt = t->transition;

		/* a worker may be changing it: its turn comes when taken over again */
		if (!pt || pt->next_attempt_us > now || ulpd_fleet_busy(t->pid))
			continue;
		ulp_error_clear();
		/* reported once a minute: the attempts go on every second */
		if (ulp_transition_work(t, ULPD_RETRY_BUDGET_MS, NULL) < 0 && ulp_target_alive(t) &&
		    t->transition && now - t->transition->warned_us > 60000000u) {
			t->transition->warned_us = now;
			ulpd_log(LOG_WARNING, "transition-retry-failed", t->pid,
				 t->transition->ap->info->name,
				 "process %d: transition attempt failed: %s", t->pid,
				 ulp_last_error());
		}
		ulpd_schedule(t);
		now = ulp_now_us();
	}
	ulpd_waiters_settle();
	/* files of a program patched a while ago: not pinned until the next request */
	ulp_elf_cache_expire(now);
	if (now - ulpd_last_prune_us >= ULPD_PRUNE_INTERVAL_US) {
		ulpd_targets_prune();
		ulpd_last_prune_us = now;
	}
	for (size_t i = 0; i < ulpd_nr_targets; i++)
		if (ulpd_targets[i]->transition &&
		    ulpd_targets[i]->transition->next_attempt_us < next)
			next = ulpd_targets[i]->transition->next_attempt_us;
	for (size_t i = 0; i < ulpd_nr_waiters; i++)
		if (ulpd_waiters[i].deadline_us && ulpd_waiters[i].deadline_us < next)
			next = ulpd_waiters[i].deadline_us;
	if (next == UINT64_MAX)
		return -1;
	now = ulp_now_us();
	return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

static bool ulpd_get_bool(struct json_object *req, const char *key, bool dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}

/* A transition result: the reply now, or NULL with fd kept until it is reached. */
static struct json_object *ulpd_transition_reply(int ret, struct ulp_target *t, const char *name,
						 bool to_patched, bool wait, long timeout_s,
						 const struct ulp_transition_stats *stats, int fd)
{
	struct json_object *r;

	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	if (ret != ULP_PENDING)
		return ulpd_done_reply(t, name, to_patched, stats);
	if (wait) {
		ulpd_waiter_add(fd, t, name, to_patched, timeout_s, stats);
		return NULL;
	}
	ulpd_schedule(t);
	r = ulpd_reply_ok(
		"patch '%s' is in %s transition in process %d; ulpd completes it in the background",
		name, to_patched ? "patching" : "unpatching", t->pid);
	json_object_object_add(r, "in_transition", json_object_new_boolean(1));
	ulpd_add_stats(r, stats);
	return r;
}

/*
 * The patch file: the descriptor the client sent with the request (ulpctl
 * does), or for root only, the file at path, which ulpd opens itself.
 * Others could make ulpd (root) read files they cannot.
 */
static int ulpd_patch_file(struct json_object *req, const struct ucred *peer, const char *path,
			   int *out)
{
	struct stat st;
	int64_t v;
	int fd, ret;

	if (ulpd_get_int(req, "_fd", &v) == 0)
		fd = fcntl((int)v, F_DUPFD_CLOEXEC, 0);
	else if (peer->uid == 0)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	else
		return ulp_errorf(
			-EPERM,
			"%s: ulpd reads patch files only as sent by ulpctl (a descriptor), or by path for root",
			path);
	if (fd < 0)
		return ulp_errorf(-errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ulp_errorf(-EINVAL, "%s: not a regular file", path);
	}
	/* ulpd parses only a copy no one else can change (a truncated mapping: SIGBUS) */
	ret = ulpd_store_snapshot(fd, path, out);
	close(fd);
	return ret;
}

static struct json_object *ulpd_apply(struct json_object *req, const struct ucred *peer,
				      bool check_only, int fd)
{
	const char *path = ulpd_get_string(req, "patch");
	struct ulp_apply_opts opts = { .check_only = check_only };
	struct ulp_transition_stats stats = { 0 };
	struct ulp_patch_info *info;
	struct json_object *r;
	struct ulp_target *t;
	int64_t timeout = 0;
	char name[256], stored[4400];
	int ret, pfd = -1;
	pid_t pid;

	if (!path)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "missing \"patch\""), NULL);
	/* Validate the file first: a bad patch is reported as such whatever the pid. */
	ret = ulpd_patch_file(req, peer, path, &pfd);
	if (ret == 0)
		ret = ulp_patch_info_read_fd(pfd, path, &info);
	if (ret < 0) {
		if (pfd >= 0)
			close(pfd);
		return ulpd_reply_error(ret, NULL);
	}
	snprintf(name, sizeof(name), "%s", info->name);
	ulp_patch_info_free(info);
	if (check_only && !json_object_object_get_ex(req, "pid", NULL)) {
		close(pfd);
		return ulpd_reply_ok("patch '%s' (%s) is valid", name, path);
	}
	/* the client may patch that process at all: before anything is stored */
	if (!ulpd_get_string(req, "exe")) {
		ret = ulpd_get_pid(req, peer, &pid);
	} else if (peer->uid != 0 && !ulpd_get_bool(req, "persist", false)) {
		size_t reach = 0;

		/* --exe: at least one process of the program it may patch */
		ret = ulpd_fleet_count(ulpd_get_string(req, "exe"), peer, &reach);
		if (ret == 0 && reach == 0) {
			close(pfd);
			r = ulpd_reply_ok("no process of %s that you may patch is running",
					  ulpd_get_string(req, "exe"));
			json_object_object_add(r, "processes", json_object_new_array());
			json_object_object_add(r, "matched", json_object_new_int64(0));
			json_object_object_add(r, "failed", json_object_new_int64(0));
			return r;
		}
	}
	/* ulpd's own copy from here on: the client's file may change or go */
	if (ret == 0)
		ret = lseek(pfd, 0, SEEK_SET) < 0
			      ? ulp_errorf(-errno, "%s: %s", path, strerror(errno))
			      : ulpd_store_put(pfd, path, stored, sizeof(stored));
	close(pfd);
	opts.display = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (ret == 0 && ulpd_get_string(req, "exe")) {
		bool persist = ulpd_get_bool(req, "persist", false);
		struct ulpd_fleet_op op = { .apply = true,
					    .persist = persist,
					    .patch = stored,
					    .display = opts.display,
					    .name = name };

		if (check_only)
			return ulpd_reply_error(ulp_errorf(-EINVAL, "check takes -p, not --exe"),
						NULL);
		/* --persist: root only, it patches whoever runs the program later */
		if (persist && peer->uid != 0)
			return ulpd_reply_error(
				ulp_errorf(-EPERM,
					   "--persist: only root may patch processes yet to start"),
				NULL);
		if (persist) {
			ret = ulpd_persist_add(ulpd_get_string(req, "exe"), stored, opts.display,
					       name);
			if (ret < 0)
				return ulpd_reply_error(ret, NULL);
		}
		return ulpd_fleet(ulpd_get_string(req, "exe"), peer, &op, fd);
	}
	if (ret == 0)
		ret = ulpd_target_get(pid, &t);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	ulpd_get_int(req, "timeout", &timeout);
	if (timeout > 86400 * 365)
		timeout = 86400 * 365;
	ret = ulp_patch_apply(t, stored, &opts, &stats);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	if (check_only)
		return ulpd_reply_ok("patch '%s' can be applied to process %d", name, pid);
	if (ret == ULP_ALREADY) {
		r = ulpd_reply_ok("patch '%s' is already applied to process %d", name, pid);
		ulpd_add_stats(r, &stats);
		return r;
	}
	return ulpd_transition_reply(ret, t, name, true, ulpd_get_bool(req, "wait", true),
				     (long)timeout, &stats, fd);
}

/* The target of an operation on an applied patch: one ulpd already knows. */
static int ulpd_known_target(struct json_object *req, const struct ucred *peer, const char *name,
			     struct ulp_target **out)
{
	pid_t pid;
	int ret = ulpd_get_pid(req, peer, &pid);

	if (ret < 0)
		return ret;
	ulpd_targets_prune();
	if (ulpd_fleet_busy(pid))
		return ulpd_fleet_busy_error(pid);
	*out = ulpd_target_lookup(pid);
	if (*out)
		return 0;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	return ulp_errorf(-ENOENT, "patch '%s' is not applied to process %d", name, pid);
}

/* Is the stored patch at path applied anywhere ulpd knows of, or kept for --persist? */
static bool ulpd_store_in_use(const char *path)
{
	if (ulpd_persist_uses(path) || ulpd_fleet_uses(path))
		return true;
	for (size_t i = 0; i < ulpd_nr_targets; i++)
		for (size_t k = 0; k < ulpd_targets[i]->nr_patches; k++)
			if (ulpd_targets[i]->patches[k]->path &&
			    !strcmp(ulpd_targets[i]->patches[k]->path, path))
				return true;
	return false;
}

static struct json_object *ulpd_revert(struct json_object *req, const struct ucred *peer, int fd)
{
	const char *name = ulpd_get_string(req, "name");
	struct ulp_transition_stats stats = { 0 };
	struct ulp_target *t;
	int ret;

	if (!name)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "missing \"name\""), NULL);
	if (ulpd_get_string(req, "exe")) {
		struct ulpd_fleet_op op = { .apply = false, .name = name };

		/* the program's later processes are no longer patched either */
		if (peer->uid == 0)
			ulpd_persist_remove(ulpd_get_string(req, "exe"), name);
		return ulpd_fleet(ulpd_get_string(req, "exe"), peer, &op, fd);
	}
	ret = ulpd_known_target(req, peer, name, &t);
	if (ret == 0)
		ret = ulp_patch_revert(t, name, &stats);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	/* a waiting apply learns its transition was turned around */
	ulpd_waiters_settle();
	return ulpd_transition_reply(ret, t, name, false, ulpd_get_bool(req, "wait", true), 0,
				     &stats, fd);
}

static struct json_object *ulpd_force(struct json_object *req, const struct ucred *peer)
{
	const char *name = ulpd_get_string(req, "name");
	struct ulp_target *t;
	bool to_patched;
	int ret;

	if (!name)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "missing \"name\""), NULL);
	ret = ulpd_known_target(req, peer, name, &t);
	if (ret == 0 && !t->transition)
		ret = ulp_errorf(-EINVAL, "no transition is in progress in process %d", t->pid);
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	to_patched = t->transition->patching;
	ret = ulp_transition_force(t, name);
	ulpd_waiters_settle();
	if (ret < 0)
		return ulpd_reply_error(ret, NULL);
	return ulpd_reply_ok("forced patch '%s' to the %s state in process %d", name,
			     to_patched ? "patched" : "unpatched", t->pid);
}

static struct json_object *ulpd_threads(struct json_object *req, const struct ucred *peer)
{
	struct json_object *r, *threads = json_object_new_array(), *tr = NULL;
	struct ulp_thread_info *ti = NULL;
	struct ulp_target *t;
	bool patched_now = false;
	size_t nr = 0;
	pid_t pid;
	int ret = ulpd_get_pid(req, peer, &pid);

	if (ret == 0)
		ret = ulpd_target_get(pid, &t);
	if (ret == 0)
		ret = ulp_target_threads(t, &ti, &nr);
	if (ret < 0) {
		json_object_put(threads);
		return ulpd_reply_error(ret, NULL);
	}
	for (size_t i = 0; i < t->nr_patches; i++)
		patched_now |= t->patches[i]->enabled;
	if (t->transition) {
		tr = json_object_new_object();
		json_object_object_add(tr, "patch",
				       json_object_new_string(t->transition->ap->info->name));
		json_object_object_add(tr, "direction",
				       json_object_new_string(t->transition->patching
								      ? "patching"
								      : "unpatching"));
	}
	for (size_t i = 0; i < nr; i++) {
		struct json_object *jt = json_object_new_object();
		bool patched =
			t->transition ? ti[i].switched == t->transition->patching : patched_now;

		json_object_object_add(jt, "tid", json_object_new_int(ti[i].tid));
		json_object_object_add(jt, "state",
				       json_object_new_string(patched ? "patched" : "unpatched"));
		if (t->transition && !ti[i].switched && ti[i].func) {
			json_object_object_add(jt, "blocked_on",
					       json_object_new_string(ti[i].func));
			json_object_object_add(jt, "object", json_object_new_string(ti[i].object));
		}
		json_object_array_add(threads, jt);
	}
	free(ti);
	r = ulpd_reply_ok("threads");
	json_object_object_add(r, "pid", json_object_new_int(t->pid));
	json_object_object_add(r, "transition", tr);
	json_object_object_add(r, "threads", threads);
	return r;
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
			struct json_object *jo, *funcs;

			/* an atomic replace's no-ops: ulp's, not the patch's */
			if (os->nop)
				continue;
			jo = json_object_new_object();
			funcs = json_object_new_array();
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
				if (fs->info->new_name)
					json_object_object_add(
						jf, "new_name",
						json_object_new_string(fs->info->new_name));
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

static struct json_object *ulpd_status_request(struct json_object *req, const struct ucred *peer)
{
	struct json_object *r, *procs = json_object_new_array();
	int64_t v;

	ulpd_targets_prune();
	ulpd_adopt_children();
	if (ulpd_get_int(req, "pid", &v) == 0) {
		struct ulp_target *t;
		pid_t pid;
		int ret = ulpd_get_pid(req, peer, &pid);

		if (ret == 0 && !ulpd_target_lookup(pid) && kill(pid, 0) < 0 && errno == ESRCH)
			ret = ulp_errorf(-ESRCH, "no such process: %d", pid);
		/* one a running --exe request is changing: as it was before, if known */
		t = ret == 0 && ulpd_fleet_busy(pid) ? ulpd_target_lookup(pid) : NULL;
		if (ret == 0 && !t)
			ret = ulpd_target_get(pid, &t);
		if (ret < 0) {
			json_object_put(procs);
			return ulpd_reply_error(ret, NULL);
		}
		json_object_array_add(procs, ulpd_target_json(t));
	} else {
		for (size_t i = 0; i < ulpd_nr_targets; i++) {
			struct ulp_target *t = ulpd_targets[i];

			if (!t->nr_patches || !ulpd_may_see(t->pid, peer))
				continue;
			json_object_array_add(procs, ulpd_target_json(t));
		}
	}
	r = ulpd_reply_ok("status");
	json_object_object_add(r, "processes", procs);
	if (!json_object_object_get_ex(req, "pid", NULL))
		json_object_object_add(r, "exe_requests", ulpd_fleet_status(peer));
	return r;
}

static struct json_object *ulpd_log_request(struct json_object *req, const struct ucred *peer)
{
	struct json_object *r, *lines = json_object_new_array();
	struct ulp_target *t;
	int64_t from;
	pid_t pid;
	int ret = ulpd_get_pid(req, peer, &pid);

	if (ret == 0)
		ret = ulpd_target_get(pid, &t);
	if (ret < 0) {
		json_object_put(lines);
		return ulpd_reply_error(ret, NULL);
	}
	ulp_target_refresh_log(t);
	if (ulpd_get_int(req, "from", &from) < 0 || from < 0)
		from = 0;
	for (size_t i = (size_t)from; i < t->nr_log; i++)
		json_object_array_add(lines, json_object_new_string(t->log[i]));
	r = ulpd_reply_ok("log");
	json_object_object_add(r, "lines", lines);
	json_object_object_add(r, "next", json_object_new_int64((int64_t)t->nr_log));
	json_object_object_add(r, "alive", json_object_new_boolean(ulp_target_alive(t)));
	return r;
}

struct json_object *ulpd_handle_request(struct json_object *req, uid_t uid, int fd)
{
	const char *cmd = ulpd_get_string(req, "cmd");
	struct ucred peer;

	ulp_error_clear();
	/* copies of patches reverted since (or only checked) go; cheap: one directory */
	ulpd_store_gc(ulpd_store_in_use);
	/* server.c passes the uid; the rule needs the gid and pid of the same SO_PEERCRED */
	ulpd_peer_creds(fd, uid, &peer);
	if (!cmd)
		return ulpd_reply_error(ulp_errorf(-EINVAL, "malformed request: missing \"cmd\""),
					NULL);
	if (strcmp(cmd, "apply") == 0)
		return ulpd_apply(req, &peer, false, fd);
	if (strcmp(cmd, "check") == 0)
		return ulpd_apply(req, &peer, true, fd);
	if (strcmp(cmd, "revert") == 0)
		return ulpd_revert(req, &peer, fd);
	if (strcmp(cmd, "force") == 0)
		return ulpd_force(req, &peer);
	if (strcmp(cmd, "threads") == 0)
		return ulpd_threads(req, &peer);
	if (strcmp(cmd, "status") == 0)
		return ulpd_status_request(req, &peer);
	if (strcmp(cmd, "log") == 0)
		return ulpd_log_request(req, &peer);
	return ulpd_reply_error(ulp_errorf(-EINVAL, "unknown command '%s'", cmd), NULL);
}
