/* SPDX-License-Identifier: MIT */
/*
 * Enabling and disabling patches: the kernel's livepatch core.c and the life
 * cycle of its transition.c.  The order of callbacks and event-log lines
 * follows the kernel's (seeds 000 and 004); one transition per process at a
 * time; a transition that cannot complete yet stays pending in the target
 * and ulpd calls ulp_transition_work() again later, attaching only for each
 * attempt, so between attempts the process runs untraced.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ulp/patch.h>

#include "callbacks.h"
#include "dlhook.h"
#include "engine.h"
#include "error.h"
#include "inject.h"
#include "memory.h"
#include "patch.h"
#include "process.h"
#include "placement.h"
#include "poke.h"
#include "procfs.h"
#include "recovery.h"
#include "replace.h"
#include "state.h"
#include "symbols.h"
#include "transition.h"
#include "unwind.h"

/* One attach to the target: everything an operation needs while attached. */
struct ulp_session {
	struct ulp_target *t;
	struct ulp_process *p;
	struct ulp_unwinder *unw;
	struct ulp_transition_stats *stats;
	struct ulp_callback_ctx cb;
};

static int ulp_session_open(struct ulp_target *t, struct ulp_transition_stats *stats,
			    struct ulp_session *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->t = t;
	s->stats = stats;
	if (!ulp_target_alive(t))
		return ulp_errorf(-ESRCH, "no such process: %d (it exited)", t->pid);
	ulp_trace("attach %d", t->pid);
	ret = ulp_process_attach(t->pid, &s->p);
	ulp_trace("attached");
	if (ret < 0)
		return ret;
	s->p->own_tid = t->worker_tid;
	s->cb = (struct ulp_callback_ctx){ .target = t, .proc = s->p, .hook_fd = -1 };
	return 0;
}

/*
 * The longest stop counts every stop of the operation: runtime injection,
 * transition and detach, all but those of ulp's own worker thread.
 */
static void ulp_session_close(struct ulp_session *s)
{
	ulp_trace("detach");
	ulp_unwinder_destroy(s->unw);
	ulp_runtime_drain_log(s->t, s->p);
	/* the process holds ulpd's view of it, for a ulpd restarted after a crash */
	if (!s->t->adopting)
		ulp_recovery_save(s->t, s->p);
	ulp_process_detach(s->p);
	if (s->stats && s->p->longest_stop_us > s->stats->longest_stop_us)
		s->stats->longest_stop_us = s->p->longest_stop_us;
	ulp_process_free(s->p);
}

/*
 * A process being killed loses its threads one by one (a thread "gone"
 * while its process still looks alive) before it is a zombie: give it a
 * moment to show it is exiting.
 */
static bool ulp_target_exiting(struct ulp_target *t, int ret)
{
	for (int i = 0; i < 20; i++) {
		/* killed: its main thread exits first, a zombie until the others have */
		if (!ulp_target_alive(t) || ulp_proc_exited(t->pid))
			return true;
		if (ret != -ESRCH)
			return false;
		usleep(10000);
	}
	return false;
}

static int ulp_session_error(struct ulp_session *s, int ret)
{
	if (s->p->exited || ulp_target_exiting(s->t, ret))
		return ulp_errorf(-ESRCH, "process %d exited during the operation", s->t->pid);
	return ret;
}

static const char *ulp_direction(bool patching)
{
	return patching ? "patching" : "unpatching";
}

/* Start a transition of ap to to_state; entries go to `entries` while threads run. */
static int ulp_transition_begin(struct ulp_session *s, struct ulp_applied_patch *ap, bool patching,
				unsigned char to_state, enum ulp_entry_to entries)
{
	struct ulp_transition tr = { .target = s->t, .proc = s->p, .to_state = to_state };
	struct ulp_pending_transition *pt = calloc(1, sizeof(*pt));
	unsigned char prev = (unsigned char)(to_state - 1);
	int ret;

	if (!pt)
		return ulp_errorf(-ENOMEM, "out of memory");
	pt->ap = ap;
	pt->patching = patching;
	pt->to_state = to_state;
	s->t->transition = pt;
	/* threads created from now on start switched; the others may switch themselves */
	ret = ulp_transition_start(&tr);
	if (ret == 0)
		ret = ulp_self_switch_publish(s->t, s->p);
	if (ret == 0)
		ulp_recovery_step(s->t, s->p, patching ? "apply" : "revert", ap->info->name,
				  "begin");
	if (ret == 0)
		ret = ulp_entries_poke(s->t, s->p, ap, entries);
	if (ret < 0) {
		ulp_mem_write(s->p, s->t->tls_init, &prev, 1);
		ulp_target_end_transition(s->t);
		ulp_self_switch_publish(s->t, s->p);
		return ret;
	}
	ap->entries = (unsigned char)entries;
	ap->gen = to_state;
	ap->in_transition = true;
	pt->start_us = ulp_now_us(); /* from here threads can reach the new code */
	ulp_registry_publish(s->t, s->p, ap);
	ulp_recovery_step(s->t, s->p, patching ? "apply" : "revert", ap->info->name, "started");
	return 0;
}

typedef void (*ulp_object_callback)(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
				    struct ulp_applied_object *os, int state);

/*
 * cb for each loaded object of ap (only patched ones if patched_only)
 * but the first `done` (which ran before a restart of ulpd), each saved
 * in the process as it runs (recovery.h: kind, step, op.post_done).
 */
static void ulp_callbacks_resumable(struct ulp_session *s, struct ulp_applied_patch *ap,
				    ulp_object_callback cb, bool patched_only, unsigned done,
				    const char *kind, const char *step)
{
	unsigned n = 0;

	for (size_t o = 0; o < ap->nr_objs; o++) {
		if (!ap->objs[o].loaded || (patched_only && !ap->objs[o].patched) || n++ < done)
			continue;
		cb(&s->cb, ap, &ap->objs[o], ULP_OBJECT_LIVE);
		s->t->op.post_done = n;
		ulp_recovery_step(s->t, s->p, kind, ap->info->name, step);
	}
}

/*
 * The end of a completed transition: post callbacks (the first `done`
 * loaded objects' already ran: a restarted ulpd finishing the job), then
 * a patch that was reverted leaves.  Each step is saved in the process.
 */
static int ulp_transition_finish(struct ulp_session *s, struct ulp_applied_patch *ap, bool patching,
				 unsigned done)
{
	struct ulp_target *t = s->t;
	const char *name = ap->info->name;

	if (patching) {
		ulp_callbacks_resumable(s, ap, ulp_callback_post_patch, false, done, "complete",
					"post-patch");
		ulp_target_log(t, "ulp: '%s': patching complete", name);
		/*
		 * The replaced patches stayed in the registry so far: post_patch
		 * may take their states over (ulp_get_prev_state), as in the
		 * kernel, which frees them after the transition.
		 */
		if (ap->info->replace) {
			ulp_replace_complete(t, s->p, ap);
			ulp_dlhook_watch(t, s->p);
		}
		ulp_registry_publish(t, s->p, NULL);
		ulp_recovery_step(t, s->p, NULL, NULL, NULL);
		return ULP_DONE;
	}
	ap->enabled = false;
	for (size_t o = 0; o < ap->nr_objs; o++)
		ap->objs[o].patched = false;
	ulp_callbacks_resumable(s, ap, ulp_callback_post_unpatch, false, done, "complete",
				"post-unpatch");
	ulp_recovery_step(t, s->p, "complete", name, "unload");
	/*
	 * Never unmap code a thread may still run: after a force (as the
	 * kernel keeps a forced livepatch module) or with a thread still in a
	 * slot, the patch stays loaded.
	 */
	if (ap->forced) {
		/* nothing: the kernel says nothing either */
	} else if (ulp_threads_leave_slots(s->t, s->p, ap) == 0) {
		ulp_release_slots(t, s->p, ap);
		ulp_unload_from_target(t, s->p, ap);
	} else {
		ulp_target_log(t, "ulp: '%s': a thread stays inside its slots; they stay mapped",
			       name);
	}
	ulp_target_log(t, "ulp: '%s': unpatching complete", name);
	ulp_target_remove_patch(t, ap);
	ulp_dlhook_watch(t, s->p);
	ulp_registry_publish(t, s->p, NULL);
	ulp_recovery_step(t, s->p, NULL, NULL, NULL);
	return ULP_DONE;
}

/*
 * Every thread has switched: entries go to their final place, then the
 * post callbacks, as the kernel's klp_complete_transition().
 */
static int ulp_transition_complete(struct ulp_session *s)
{
	struct ulp_target *t = s->t;
	struct ulp_pending_transition *pt = t->transition;
	struct ulp_applied_patch *ap = pt->ap;
	bool patching = pt->patching;
	const char *name = ap->info->name;
	int ret;

	ulp_recovery_step(t, s->p, "complete", name,
			  patching ? "patched-entries" : "unpatched-entries");
	ulp_target_log(t, "ulp: '%s': completing %s transition", name, ulp_direction(patching));
	/* unpatching: where ap's version ran, the version under it (or the original) */
	ret = ulp_entries_poke(t, s->p, ap, patching ? ULP_ENTRY_STEADY : ULP_ENTRY_BELOW);
	/* under a newer version: that one's slot skips ap's from now on */
	if (ret == 0 && !patching)
		ret = ulp_stack_bridge(s->p, ap);
	if (ret < 0)
		return ret; /* still pending: the next attempt completes it */
	ap->entries = patching ? ULP_ENTRY_STEADY : ULP_ENTRY_BELOW;
	ap->in_transition = false;
	t->last_transition_us = ulp_now_us() - pt->start_us;
	ulp_target_end_transition(t);
	ulp_self_switch_publish(t, s->p);
	t->op.post_done = 0;
	ulp_recovery_step(t, s->p, "complete", name, patching ? "post-patch" : "post-unpatch");
	return ulp_transition_finish(s, ap, patching, 0);
}

/* Check threads for up to budget_ms; complete the transition if all switched. */
static int ulp_transition_attempt(struct ulp_session *s, int budget_ms)
{
	struct ulp_pending_transition *pt = s->t->transition;
	struct ulp_transition tr = {
		.target = s->t,
		.pending = pt,
		.proc = s->p,
		.to_state = pt->to_state,
		.stats = s->stats,
	};
	struct ulp_addr_range *busy = NULL;
	int ret = 0;

	if (!s->unw)
		ret = ulp_unwinder_create(s->t->pid, &s->unw);
	if (ret == 0)
		ret = ulp_busy_ranges(pt->ap, pt->patching, &busy, &tr.nr_busy);
	if (ret < 0)
		return ret;
	tr.unw = s->unw;
	tr.busy = busy;
	ulp_trace("attempt");
	ret = ulp_transition_run(&tr, budget_ms);
	ulp_trace("attempt done: %d", ret);
	ulp_fault_point("attempt");
	pt->attempts++;
	free(busy);
	if (ret == 1)
		return ulp_transition_complete(s);
	return ret < 0 ? ulp_session_error(s, ret) : ULP_PENDING;
}

/*
 * The kernel's klp_reverse_transition(): threads go back to the state they
 * came from, through the dispatch already in place.
 */
static int ulp_transition_reverse(struct ulp_session *s, int budget_ms)
{
	struct ulp_pending_transition *pt = s->t->transition;
	struct ulp_applied_patch *ap = pt->ap;
	struct ulp_transition tr = { .target = s->t, .proc = s->p };
	int ret;

	ulp_target_log(s->t, "ulp: '%s': reversing transition from %s to %s", ap->info->name,
		       ulp_direction(pt->patching), ulp_direction(!pt->patching));
	pt->patching = !pt->patching;
	pt->to_state = (unsigned char)(ap->gen - 1);
	pt->start_us = ulp_now_us();
	for (size_t i = 0; i < pt->nr_threads; i++)
		pt->threads[i].switched = false;
	tr.to_state = pt->to_state;
	ret = ulp_transition_start(&tr);
	if (ret == 0)
		ret = ulp_self_switch_publish(s->t, s->p);
	if (ret < 0)
		return ret;
	ap->enabled = pt->patching;
	ulp_target_log(s->t, "ulp: '%s': starting %s transition", ap->info->name,
		       ulp_direction(pt->patching));
	return ulp_transition_attempt(s, budget_ms);
}

/*
 * A patch that never got going: the kernel's klp_cancel_transition().  No
 * entry leads to its slots; objects whose pre_patch succeeded get their
 * post_unpatch.
 */
static void ulp_patch_cancel(struct ulp_session *s, struct ulp_applied_patch *ap)
{
	const char *name = ap->info->name;

	ulp_target_log(s->t, "ulp: failed to enable patch '%s'", name);
	ulp_target_log(s->t, "ulp: '%s': canceling patching transition, going to unpatch", name);
	ulp_target_log(s->t, "ulp: '%s': completing unpatching transition", name);
	for (size_t o = 0; o < ap->nr_objs; o++)
		if (ap->objs[o].loaded)
			ulp_callback_post_unpatch(&s->cb, ap, &ap->objs[o], ULP_OBJECT_LIVE);
	/* a thread that hit an entry while it changed may be inside a slot */
	if (!s->p->exited && ulp_threads_leave_slots(s->t, s->p, ap) == 0) {
		ulp_release_slots(s->t, s->p, ap);
		ulp_unload_from_target(s->t, s->p, ap);
	}
	ulp_target_log(s->t, "ulp: '%s': unpatching complete", name);
}

static int ulp_busy_error(struct ulp_target *t)
{
	struct ulp_pending_transition *pt = t->transition;

	return ulp_errorf(
		-EBUSY,
		"process %d: patch '%s' is in transition (%s); wait for it, revert it or force it",
		t->pid, pt->ap->info->name, ulp_direction(pt->patching));
}

/*
 * An object of the patch loaded since the patch was checked, before the
 * loader hook watched for it: patched with the others.
 */
static int ulp_patch_rescan_objects(struct ulp_session *s, struct ulp_applied_patch *ap)
{
	struct ulp_symbols *syms = NULL;
	int ret = 0;

	for (size_t o = 0; o < ap->nr_objs && ret == 0; o++) {
		struct ulp_applied_object *os = &ap->objs[o];

		if (os->loaded || !os->info->name)
			continue;
		if (!syms && (ret = ulp_symbols_open(s->t->pid, &syms)) < 0)
			break;
		if (!ulp_symbols_find_object(syms, os->info->name))
			continue;
		ret = ulp_object_prepare(s->t, s->p, syms, ap, os);
		if (ret == 0)
			ret = ulp_build_slots(s->t, s->p, ap);
		if (ret == 0)
			ret = ulp_callback_pre_patch(&s->cb, ap, os, ULP_OBJECT_LIVE);
	}
	ulp_symbols_close(syms);
	return ret;
}

/* Load, slots and pre_patch callbacks; the patch is then ready to transition. */
static int ulp_patch_enable(struct ulp_session *s, struct ulp_applied_patch *ap, const char *path,
			    struct ulp_symbols **syms, int budget_ms)
{
	struct ulp_target *t = s->t;
	const char *name = ap->info->name;
	int ret;

	ret = ulp_runtime_ensure(t, s->p, syms);
	/* from here the process holds ap in ulpd's saved view: a crash undoes it */
	t->applying = ap;
	if (ret == 0 && ulp_dlhook_ensure(t, s->p, *syms) < 0) {
		/* the patch still applies to what is loaded now */
		ulp_target_log(t, "ulp: objects loaded later are not patched: %s",
			       ulp_last_error());
		ulp_error_clear();
	}
	if (ret == 0)
		ret = ulp_load_into_target(t, s->p, ap, path);
	if (ret == 0)
		ulp_recovery_step(t, s->p, "apply", name, "load");
	if (ret == 0)
		ret = ulp_symrefs_write(t, s->p, ap);
	if (ret == 0)
		ret = ulp_transition_next_gen(t, s->p, &ap->gen);
	if (ret == 0)
		ret = ulp_build_slots(t, s->p, ap);
	if (ret == 0)
		ulp_recovery_step(t, s->p, "apply", name, "slots");
	if (ret < 0) {
		ret = ulp_session_error(s, ret);
		if (!s->p->exited) {
			ulp_release_slots(t, s->p, ap);
			ulp_unload_from_target(t, s->p, ap);
		}
		t->applying = NULL;
		ulp_recovery_step(t, s->p, NULL, NULL, NULL);
		ulp_applied_patch_destroy(ap);
		return ret;
	}
	ulp_trace("loaded, slots built");
	ulp_target_log(t, "ulp: enabling patch '%s'", name);
	ulp_target_log(t, "ulp: '%s': initializing patching transition", name);
	/* ulp_get_prev_state() works from here on, as in the kernel */
	ulp_registry_publish(t, s->p, ap);
	for (size_t o = 0; o < ap->nr_objs; o++) {
		struct ulp_applied_object *os = &ap->objs[o];

		if (!os->loaded)
			continue;
		ret = ulp_callback_pre_patch(&s->cb, ap, os, ULP_OBJECT_LIVE);
		if (ret < 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s",
				 ulp_last_error()[0] ? ulp_last_error() : strerror(-ret));
			ulp_error_clear();
			ulp_target_log(t, "ulp: pre-patch callback failed for object '%s'",
				       os->name);
			ulp_patch_cancel(s, ap);
			ulp_registry_publish(t, s->p, NULL);
			t->applying = NULL;
			ulp_recovery_step(t, s->p, NULL, NULL, NULL);
			/* before ap goes: it owns the names */
			ret = ulp_errorf(
				ret, "patch '%s': pre-patch callback failed for object '%s': %s",
				name, os->name, why);
			ulp_applied_patch_destroy(ap);
			return ret;
		}
		ulp_recovery_step(t, s->p, "apply", name, "pre-patch");
	}
	ret = ulp_target_add_patch(t, ap);
	if (ret == 0)
		t->applying = NULL;
	if (ret == 0)
		ret = ulp_dlhook_watch(t, s->p);
	if (ret == 0)
		ret = ulp_patch_rescan_objects(s, ap);
	if (ret == 0)
		ret = ulp_transition_begin(s, ap, true, ap->gen, ULP_ENTRY_PATCHING);
	if (ret < 0) {
		ret = ulp_session_error(s, ret);
		ulp_target_remove_patch_keep(t, ap);
		t->applying = NULL;
		if (!s->p->exited) {
			ulp_patch_cancel(s, ap);
			ulp_registry_publish(t, s->p, NULL);
		}
		ulp_recovery_step(t, s->p, NULL, NULL, NULL);
		ulp_applied_patch_destroy(ap);
		return ret;
	}
	ap->enabled = true;
	for (size_t o = 0; o < ap->nr_objs; o++)
		ap->objs[o].patched = ap->objs[o].loaded;
	ulp_target_log(t, "ulp: '%s': starting patching transition", name);
	return ulp_transition_attempt(s, budget_ms);
}

/* Seed 002's rules against the patches installed: refused before anything changes. */
static int ulp_patch_check_states(struct ulp_target *t, const struct ulp_patch_info *info,
				  bool check_only)
{
	const struct ulp_patch_info **installed = calloc(t->nr_patches + 1, sizeof(*installed));
	bool ok;

	if (!installed)
		return ulp_errorf(-ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nr_patches; i++)
		installed[i] = t->patches[i]->info;
	ok = ulp_patch_states_compatible(info, installed, t->nr_patches);
	free(installed);
	if (ok)
		return 0;
	if (!check_only)
		ulp_target_log(
			t, "ulp: patch '%s' is not compatible with the already installed patches",
			info->name);
	return ulp_errorf(
		-EINVAL,
		"patch '%s' is not compatible with the already installed patches in process %d (its states' versions, see ulp-patch(7))",
		info->name, t->pid);
}

/* The same patch file: the same build-id (without one, trust the name). */
static bool ulp_same_build(const struct ulp_patch_info *a, const struct ulp_patch_info *b)
{
	if (!a->build_id || !b->build_id)
		return true;
	return strcmp(a->build_id, b->build_id) == 0;
}

int ulp_patch_apply(struct ulp_target *t, const char *path, const struct ulp_apply_opts *opts,
		    struct ulp_transition_stats *stats)
{
	int budget = opts && opts->budget_ms ? opts->budget_ms : ULP_ATTEMPT_MS;
	bool check_only = opts && opts->check_only;
	struct ulp_applied_patch *ap = NULL, *have;
	struct ulp_symbols *syms = NULL;
	struct ulp_patch_info *info;
	struct ulp_session s;
	int ret;

	ret = ulp_patch_info_read(path, &info);
	if (ret < 0)
		return ret;
	have = ulp_target_find_patch(t, info->name);
	/*
	 * Re-applying a patch is a no-op success (a CI job may run the same
	 * command twice); another file under the same name is a mistake.
	 */
	if (have && !ulp_same_build(have->info, info)) {
		ret = ulp_errorf(
			-EEXIST,
			"process %d already has a different patch named '%s' (build-id %s; this file: %s); revert it first or rename the new one",
			t->pid, info->name, have->info->build_id ? have->info->build_id : "none",
			info->build_id ? info->build_id : "none");
		ulp_patch_info_free(info);
		return ret;
	}
	ulp_patch_info_free(info);
	if (have && !check_only) {
		/* applying a patch being reverted turns the transition around */
		if (t->transition && t->transition->ap == have && !t->transition->patching) {
			ret = ulp_session_open(t, stats, &s);
			if (ret < 0)
				return ret;
			ret = ulp_transition_reverse(&s, budget);
			ulp_session_close(&s);
			return ret;
		}
		/* still on its way: the caller waits with the first one */
		if (t->transition && t->transition->ap == have)
			return ULP_PENDING;
		return ULP_ALREADY;
	}
	if (t->transition && !check_only)
		return ulp_busy_error(t);
	ret = ulp_patch_info_read(path, &info);
	if (ret < 0)
		return ret;
	ret = ulp_patch_check_states(t, info, check_only);
	if (ret < 0) {
		ulp_patch_info_free(info);
		return ret;
	}
	ret = ulp_session_open(t, stats, &s);
	if (ret < 0) {
		ulp_patch_info_free(info);
		return ret;
	}
	ret = ulp_symbols_open(t->pid, &syms);
	ulp_trace("symbols read");
	if (ret == 0 && !ulp_symbols_find_object(syms, "libc.so.6"))
		ret = ulp_errorf(
			-ENOTSUP,
			"process %d is statically linked (no libc.so.6 mapped); ulp patches dynamically linked programs only",
			t->pid);
	if (ret == 0)
		ret = ulp_patch_prepare(t, s.p, syms, info, &ap);
	if (ret < 0) {
		ulp_patch_info_free(info);
		ret = ulp_session_error(&s, ret);
	} else if (check_only) {
		ulp_applied_patch_destroy(ap); /* owns info */
	} else {
		const char *base = strrchr(path, '/');

		ap->path = strdup(path);
		ap->display =
			strdup(opts && opts->display ? opts->display : (base ? base + 1 : path));
		ret = ulp_patch_enable(&s, ap, path, &syms, budget);
	}
	ulp_symbols_close(syms);
	ulp_session_close(&s);
	return ret;
}

/*
 * The pre_unpatch callbacks (the first `done` objects' already ran: a
 * restarted ulpd finishing the job), each saved as it runs, then the
 * unpatching transition.
 */
static int ulp_revert_begin(struct ulp_session *s, struct ulp_applied_patch *ap, unsigned char gen,
			    unsigned done)
{
	ulp_callbacks_resumable(s, ap, ulp_callback_pre_unpatch, true, done, "revert",
				"pre-unpatch");
	return ulp_transition_begin(s, ap, false, gen, ULP_ENTRY_UNPATCHING);
}

int ulp_patch_revert(struct ulp_target *t, const char *name, struct ulp_transition_stats *stats)
{
	struct ulp_applied_patch *ap = ulp_target_find_patch(t, name);
	struct ulp_pending_transition *pt = t->transition;
	unsigned char gen;
	struct ulp_session s;
	int ret;

	if (!ap)
		return ulp_errorf(-ENOENT, "patch '%s' is not applied to process %d", name, t->pid);
	if (pt && pt->ap != ap)
		return ulp_busy_error(t);
	ret = ulp_session_open(t, stats, &s);
	if (ret < 0)
		return ret;
	if (pt && pt->patching) {
		ret = ulp_transition_reverse(&s, ULP_ATTEMPT_MS);
	} else if (pt) {
		ret = ulp_transition_attempt(&s, ULP_ATTEMPT_MS); /* already going */
	} else {
		/* what can fail without a trace first: pre_unpatch then commits */
		ret = ulp_transition_next_gen(t, s.p, &gen);
		if (ret == 0)
			ret = ulp_unpatch_dispatch_write(t, s.p, ap, gen);
		if (ret == 0) {
			ulp_target_log(t, "ulp: '%s': initializing unpatching transition", name);
			ulp_registry_publish(t, s.p, ap);
			t->op.post_done = 0;
			ulp_recovery_step(t, s.p, "revert", name, "pre-unpatch");
			ret = ulp_revert_begin(&s, ap, gen, 0);
		}
		if (ret == 0) {
			ulp_target_log(t, "ulp: '%s': starting unpatching transition", name);
			ret = ulp_transition_attempt(&s, ULP_ATTEMPT_MS);
		}
	}
	if (ret < 0)
		ret = ulp_session_error(&s, ret);
	ulp_session_close(&s);
	return ret;
}

int ulp_transition_work(struct ulp_target *t, int budget_ms, struct ulp_transition_stats *stats)
{
	struct ulp_session s;
	int ret;

	if (!t->transition)
		return ULP_DONE;
	ret = ulp_session_open(t, stats, &s);
	if (ret < 0)
		return ret;
	ret = ulp_transition_attempt(&s, budget_ms);
	ulp_session_close(&s);
	return ret;
}

int ulp_transition_force(struct ulp_target *t, const char *name)
{
	struct ulp_pending_transition *pt = t->transition;
	struct ulp_transition tr = { .target = t, .pending = pt };
	struct ulp_session s;
	int ret;

	if (!pt)
		return ulp_errorf(-EINVAL, "no transition is in progress in process %d", t->pid);
	if (strcmp(pt->ap->info->name, name) != 0)
		return ulp_errorf(-EINVAL,
				  "patch '%s' is not in transition in process %d (patch '%s' is)",
				  name, t->pid, pt->ap->info->name);
	ret = ulp_session_open(t, NULL, &s);
	if (ret < 0)
		return ret;
	tr.proc = s.p;
	tr.to_state = pt->to_state;
	ulp_target_log(t, "ulp: forcing remaining threads to the patched state");
	pt->ap->forced = true;
	ret = ulp_transition_force_all(&tr);
	if (ret == 0)
		ret = ulp_transition_complete(&s);
	if (ret < 0)
		ret = ulp_session_error(&s, ret);
	ulp_session_close(&s);
	return ret;
}

size_t ulp_transition_blockers(const struct ulp_target *t, char *buf, size_t size)
{
	const struct ulp_pending_transition *pt = t->transition;
	size_t n = 0, len = 0;

	if (size)
		buf[0] = '\0';
	if (!pt)
		return 0;
	for (size_t i = 0; i < pt->nr_threads; i++) {
		const struct ulp_thread_info *ti = &pt->threads[i];
		int w;

		if (ti->switched)
			continue;
		if (ti->func)
			w = snprintf(buf + len, size > len ? size - len : 0,
				     "%sthread %d is in function '%s' of object '%s'",
				     n ? "; " : "", ti->tid, ti->func, ti->object);
		else
			w = snprintf(buf + len, size > len ? size - len : 0,
				     "%sthread %d has not switched yet", n ? "; " : "", ti->tid);
		if (w > 0)
			len += (size_t)w;
		n++;
	}
	return n;
}

int ulp_target_threads(struct ulp_target *t, struct ulp_thread_info **out, size_t *nr)
{
	const struct ulp_pending_transition *pt = t->transition;
	struct ulp_thread_info *ti;
	pid_t *tids;
	size_t n;
	int ret = ulp_proc_tasks(t->pid, &tids, &n);

	if (ret < 0)
		return ret;
	ti = calloc(n ? n : 1, sizeof(*ti));
	if (!ti) {
		free(tids);
		return ulp_errorf(-ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		/* not seen by the last attempt: created since, so in the target state */
		ti[i] = (struct ulp_thread_info){ .tid = tids[i], .switched = true };
		for (size_t j = 0; pt && j < pt->nr_threads; j++)
			if (pt->threads[j].tid == tids[i])
				ti[i] = pt->threads[j];
	}
	free(tids);
	*out = ti;
	*nr = n;
	return 0;
}

/* Is os the shared object name?  (A patch may hold it twice: its own and its no-ops.) */
static bool ulp_object_is(const struct ulp_applied_object *os, const char *name)
{
	return os->info->name && strcmp(os->info->name, name) == 0;
}

/* Patch one object that is being loaded: no thread can run its code yet. */
static int ulp_object_patch(struct ulp_session *s, struct ulp_symbols *syms,
			    struct ulp_applied_patch *ap, struct ulp_applied_object *os)
{
	int ret = ulp_object_prepare(s->t, s->p, syms, ap, os);

	if (ret < 0) {
		ulp_target_log(s->t, "ulp: failed to apply patch '%s' to object '%s': %s",
			       ap->info->name, os->name, ulp_last_error());
		return ret;
	}
	ret = ulp_callback_pre_patch(&s->cb, ap, os, ULP_OBJECT_COMING);
	if (ret < 0) {
		ulp_target_log(s->t, "ulp: pre-patch callback failed for object '%s'", os->name);
		goto forget;
	}
	ret = ulp_build_slots(s->t, s->p, ap);
	if (ret == 0 && ap->entries == ULP_ENTRY_UNPATCHING)
		ret = ulp_unpatch_dispatch_write(s->t, s->p, ap, ap->gen);
	if (ret == 0)
		ret = ulp_object_entries_write(s->p, os, ap->entries);
	if (ret < 0) {
		ulp_target_log(s->t, "ulp: failed to apply patch '%s' to object '%s': %s",
			       ap->info->name, os->name, ulp_last_error());
		/* some entries may lead to slots about to go: back to the version below */
		ulp_object_entries_write(s->p, os, ULP_ENTRY_BELOW);
		ulp_callback_post_unpatch(&s->cb, ap, os, ULP_OBJECT_COMING);
		goto forget;
	}
	os->patched = true;
	/* while in transition, post_patch waits for its completion */
	if (!ap->in_transition)
		ulp_callback_post_patch(&s->cb, ap, os, ULP_OBJECT_COMING);
	return 0;
forget:
	ulp_object_release_slots(s->t, s->p, os);
	ulp_object_forget_funcs(os);
	os->loaded = false;
	return ret;
}

/*
 * Unpatch an object that is gone (its code is unmapped, only slots remain)
 * or, when still mapped, one whose load is refused: its entries get their
 * own bytes back first, since the loader may not manage to unload it.
 */
static void ulp_object_unpatch_gone(struct ulp_session *s, struct ulp_applied_patch *ap,
				    struct ulp_applied_object *os, bool mapped, bool log)
{
	if (!ap->in_transition)
		ulp_callback_pre_unpatch(&s->cb, ap, os, ULP_OBJECT_GOING);
	if (log)
		ulp_target_log(s->t, "ulp: reverting patch '%s' on unloading object '%s'",
			       ap->info->name, os->name);
	if (mapped && os->patched)
		ulp_object_entries_write(s->p, os, ULP_ENTRY_ORIGINAL);
	ulp_object_release_slots(s->t, s->p, os);
	ulp_object_forget_funcs(os);
	os->patched = false;
	os->loaded = false;
	ulp_callback_post_unpatch(&s->cb, ap, os, ULP_OBJECT_GOING);
}

/* Objects of patches before patches[k]'s object o let go of name again (a refused load). */
static void ulp_objects_release_before(struct ulp_session *s, const char *name, size_t k, size_t o)
{
	for (size_t j = 0; j <= k; j++) {
		struct ulp_applied_patch *ap = s->t->patches[j];

		bool logged = false;

		for (size_t q = 0; q < (j < k ? ap->nr_objs : o); q++) {
			if (!ulp_object_is(&ap->objs[q], name) || !ap->objs[q].loaded)
				continue;
			ulp_object_unpatch_gone(s, ap, &ap->objs[q], true, !logged);
			logged = true;
		}
	}
}

int ulp_objects_coming(struct ulp_target *t, const struct ulp_hook_event *ev, char *reject,
		       size_t len)
{
	struct ulp_symbols *syms = NULL;
	struct ulp_session s;
	int refused = 0, ret;

	if (ulp_session_open(t, NULL, &s) < 0)
		return 0; /* cannot attach: the object loads unpatched */
	s.cb.hook_fd = t->hook_fd;
	for (uint32_t i = 0; i < ev->nr && !refused; i++) {
		for (size_t k = 0; k < t->nr_patches && !refused; k++) {
			struct ulp_applied_patch *ap = t->patches[k];
			bool logged = false;

			for (size_t o = 0; o < ap->nr_objs && !refused; o++) {
				struct ulp_applied_object *os = &ap->objs[o];

				if (!ulp_object_is(os, ev->objs[i].name) || os->loaded)
					continue;
				if (!logged)
					ulp_target_log(
						t,
						"ulp: applying patch '%s' to loading object '%s'",
						ap->info->name, os->name);
				logged = true;
				ret = syms ? 0 : ulp_symbols_open(t->pid, &syms);
				if (ret == 0)
					ret = ulp_object_patch(&s, syms, ap, os);
				if (ret == 0)
					continue;
				ulp_target_log(
					t,
					"ulp: patch '%s' failed for object '%s', refusing to load object '%s'",
					ap->info->name, os->name, os->name);
				snprintf(reject, len,
					 "ulp: patch '%s' refused to load object '%s': %s",
					 ap->info->name, os->name, strerror(-ret));
				ulp_objects_release_before(&s, ev->objs[i].name, k, o);
				refused = 1;
			}
		}
	}
	if (t->transition)
		ulp_self_switch_publish(t, s.p); /* the busy code grew */
	ulp_symbols_close(syms);
	ulp_session_close(&s);
	return refused;
}

void ulp_objects_going(struct ulp_target *t, const struct ulp_hook_event *ev)
{
	struct ulp_session s;

	if (ulp_session_open(t, NULL, &s) < 0)
		return;
	s.cb.hook_fd = t->hook_fd;
	for (uint32_t i = 0; i < ev->nr; i++) {
		for (size_t k = 0; k < t->nr_patches; k++) {
			struct ulp_applied_patch *ap = t->patches[k];
			bool logged = false;

			for (size_t o = 0; o < ap->nr_objs; o++) {
				if (!ulp_object_is(&ap->objs[o], ev->objs[i].name) ||
				    !ap->objs[o].loaded)
					continue;
				ulp_object_unpatch_gone(&s, ap, &ap->objs[o], false, !logged);
				logged = true;
			}
		}
	}
	if (t->transition)
		ulp_self_switch_publish(t, s.p);
	ulp_session_close(&s);
}

/* Is the object ulpd loaded at bias still mapped in the process? */
static bool ulp_mapped_at(pid_t pid, uint64_t bias)
{
	struct ulp_map_area *maps;
	bool found = false;
	size_t n;

	if (ulp_proc_maps_read(pid, &maps, &n) < 0)
		return true; /* cannot tell: never unload twice */
	for (size_t i = 0; i < n && !found; i++)
		found = maps[i].start == bias;
	free(maps);
	return found;
}

/*
 * An apply cut short in the patch's dlopen() (step "loading"): the saved
 * view has no handle, but the patch may be loaded, under its memfd's
 * /proc/self/fd/N name.  dlopen(RTLD_NOLOAD) finds it without loading it
 * (its extra reference dropped at once), so the cancel unloads it.
 */
static void ulp_adopt_find_loading(struct ulp_session *s, struct ulp_symbols *syms)
{
	struct ulp_applied_patch *ap = s->t->applying;
	uint64_t scratch = s->t->rt_info + offsetof(struct ulp_rt_info, scratch);
	uint64_t args[2] = { scratch, RTLD_LAZY | RTLD_NOLOAD }, handle = 0, r, dlopen_fn,
		 dlclose_fn;
	char path[64];

	if (!ap || ap->handle || ap->memfd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ap->memfd);
	if (ulp_symbols_libc_func(syms, "dlopen", &dlopen_fn) == 0 &&
	    ulp_symbols_libc_func(syms, "dlclose", &dlclose_fn) == 0 &&
	    ulp_mem_write(s->p, scratch, path, strlen(path) + 1) == 0 &&
	    ulp_runtime_call(s->t, s->p, dlopen_fn, args, 2, &handle) == 0 && handle &&
	    ulp_runtime_call(s->t, s->p, dlclose_fn, &handle, 1, &r) == 0 &&
	    ulp_mem_read_u64(s->p, handle, &ap->bias) == 0)
		ap->handle = handle;
	ulp_error_clear();
}

/*
 * What a ulpd that died was in the middle of: an apply before its
 * transition began is undone (as a cancelled one); the end of a transition
 * is finished; a revert whose pre_unpatch callbacks ran goes on.  A
 * transition under way simply goes on (ulpd retries it).
 */
static int ulp_adopt_operation(struct ulp_session *s)
{
	struct ulp_target *t = s->t;
	struct ulp_operation *op = &t->op;
	struct ulp_applied_patch *ap;
	unsigned char gen;
	int ret = 0;

	if (t->applying) {
		ap = t->applying;
		t->applying = NULL;
		ulp_patch_cancel(s, ap);
		ulp_registry_publish(t, s->p, NULL);
		ulp_applied_patch_destroy(ap);
		return 0;
	}
	if (t->transition || !op->kind[0])
		return 0;
	ap = ulp_target_find_patch(t, op->patch);
	if (!ap)
		return 0;
	if (strcmp(op->kind, "complete") == 0 && strcmp(op->step, "unload") == 0) {
		/* slots whose release may have begun are left mapped: never free twice */
		if (!ap->forced && ap->handle && ulp_mapped_at(t->pid, ap->bias))
			ulp_unload_from_target(t, s->p, ap);
		ulp_target_log(t, "ulp: '%s': unpatching complete", ap->info->name);
		ulp_target_remove_patch(t, ap);
		ulp_registry_publish(t, s->p, NULL);
		return 0;
	}
	if (strcmp(op->kind, "complete") == 0)
		return ulp_transition_finish(s, ap, strstr(op->step, "unpatch") == NULL,
					     op->post_done);
	if (strcmp(op->kind, "revert") == 0 && strcmp(op->step, "pre-unpatch") == 0) {
		ret = ulp_transition_next_gen(t, s->p, &gen);
		if (ret == 0)
			ret = ulp_unpatch_dispatch_write(t, s->p, ap, gen);
		if (ret == 0)
			ret = ulp_revert_begin(s, ap, gen, op->post_done);
		if (ret == 0)
			ulp_target_log(t, "ulp: '%s': starting unpatching transition",
				       ap->info->name);
	}
	return ret;
}

int ulp_target_adopt(pid_t pid, struct ulp_target **out)
{
	struct ulp_symbols *syms = NULL;
	struct ulp_target *t;
	struct ulp_session s;
	int ret = ulp_target_new(pid, &t);

	if (ret < 0)
		return ret;
	t->adopting = true;
	/* whose it is, read without attaching: never disturb another ulpd's process */
	ret = ulp_symbols_open(pid, &syms);
	if (ret == 0)
		ret = ulp_recovery_peek(t, syms);
	if (ret == 0)
		ret = ulp_session_open(t, NULL, &s);
	if (ret < 0) {
		ulp_symbols_close(syms);
		ulp_target_free(t);
		return ret;
	}
	ret = ulp_runtime_find(t, s.p, syms);
	/* a forked child: no worker of its own until now */
	if (ret == 0)
		ret = ulp_runtime_start_worker(t, s.p, syms);
	if (ret == 0)
		s.p->own_tid = t->worker_tid;
	if (ret == 0)
		ret = ulp_recovery_load(t, s.p);
	if (ret == 0)
		ulp_adopt_find_loading(&s, syms);
	if (ret == 0)
		t->adopting = false;
	/* int3s of a change cut short where the jump's rest is written (the loader hook's) */
	if (ret == 0)
		ulp_trap_sites_repair(t, s.p);
	if (ret == 0) {
		/*
		 * Entries as the saved view says: an int3 left by a change ulpd
		 * did not finish, or a batch half written, is made whole.
		 */
		for (size_t i = 0; i < t->nr_patches && ret == 0; i++) {
			struct ulp_applied_patch *ap = t->patches[i];
			enum ulp_entry_to want = (enum ulp_entry_to)ap->entries;

			if (t->transition && t->transition->ap == ap &&
			    strcmp(t->op.step, "begin") == 0)
				want = t->transition->patching ? ULP_ENTRY_PATCHING
							       : ULP_ENTRY_UNPATCHING;
			if (!ulp_entries_are(s.p, ap, want))
				ret = ulp_entries_poke(t, s.p, ap, want);
			if (ret == 0)
				ap->entries = (unsigned char)want;
			if (ret == 0 && t->transition && t->transition->ap == ap)
				ap->in_transition = true;
		}
	}
	/* nothing left for the runtime's SIGTRAP guard to stand in for */
	if (ret == 0 && ulp_trap_sites_repair(t, s.p) == 0)
		ulp_trap_guard_off(t, s.p);
	if (ret == 0 && t->transition)
		ret = ulp_self_switch_publish(t, s.p);
	if (ret == 0)
		ret = ulp_adopt_operation(&s);
	if (ret == 0 && t->nr_patches && ulp_dlhook_ensure(t, s.p, syms) == 0)
		ulp_dlhook_watch(t, s.p);
	if (ret == 0)
		ulp_error_clear();
	if (!t->transition)
		memset(&t->op, 0, sizeof(t->op));
	ulp_registry_publish(t, s.p, t->transition ? t->transition->ap : NULL);
	ulp_symbols_close(syms);
	ulp_session_close(&s);
	if (ret < 0) {
		ret = ulp_error_prefix(ret, "cannot adopt process %d", pid);
		ulp_target_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

int ulp_target_adopt_at_rest(pid_t pid, uint64_t rt_info, uint64_t r_debug, struct ulp_target **out)
{
	/* plain reads and runtime calls through the worker's channel: no ptrace */
	struct ulp_process peek = { .pid = pid, .mem_fd = -1 };
	struct ulp_target *t;
	int ret = rt_info ? ulp_target_new(pid, &t) : -EINVAL;

	if (ret < 0)
		return ulp_target_adopt(pid, out);
	t->adopting = true;
	ret = ulp_runtime_find_at(t, &peek, rt_info);
	if (ret == 0)
		ret = ulp_recovery_load(t, &peek);
	/* something to finish, or a child without its worker: attached, in full */
	if (ret == 0 && (t->transition || t->applying || t->op.step[0] || !t->worker_tid))
		ret = -EAGAIN;
	if (ret == 0 && t->nr_patches) {
		t->r_debug = r_debug;
		ret = ulp_dlhook_reopen(t, &peek);
	}
	if (ret < 0) {
		ulp_target_free(t);
		ulp_error_clear();
		return ulp_target_adopt(pid, out);
	}
	t->adopting = false;
	*out = t;
	return 0;
}

int ulp_target_write_code(struct ulp_target *t, uint64_t addr, const uint8_t *bytes, size_t len)
{
	struct ulp_poke k = { .addr = addr, .len = len, .emulate_to = addr };
	bool no_sync = t->no_sync_core;
	struct ulp_session s;
	int ret;

	if (len > sizeof(k.bytes))
		return ulp_errorf(-EINVAL, "%zu bytes of code at once", len);
	memcpy(k.bytes, bytes, len);
	ret = ulp_session_open(t, NULL, &s);
	if (ret < 0)
		return ret;
	/* without the runtime, nothing serialises CPUs: with every thread stopped */
	if (!t->rt_info)
		t->no_sync_core = true;
	ret = ulp_text_poke(t, s.p, &k, 1, NULL);
	t->no_sync_core = no_sync;
	if (ret < 0)
		ret = ulp_session_error(&s, ret);
	ulp_session_close(&s);
	return ret;
}
