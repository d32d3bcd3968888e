/* SPDX-License-Identifier: MIT */
#include "callbacks.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <ulp/patch.h>

#include "error.h"
#include "inject.h"
#include "memory.h"
#include "process.h"
#include "remote_call.h"

/* A callback is the patch author's code: give it time, but not forever. */
#define ULP_CALLBACK_TIMEOUT_MS 30000

static uint64_t ulp_callback_addr(const struct ulp_applied_object *os, enum ulp_callback cb)
{
	switch (cb) {
	case ULP_PRE_PATCH:
		return os->info->pre_patch;
	case ULP_POST_PATCH:
		return os->info->post_patch;
	case ULP_PRE_UNPATCH:
		return os->info->pre_unpatch;
	case ULP_POST_UNPATCH:
		return os->info->post_unpatch;
	}
	return 0;
}

static int ulp_call_on_thread(struct ulp_callback_ctx *c, uint64_t fn, uint64_t arg, uint64_t *ret)
{
	struct ulp_thread *th = ulp_process_find_thread(c->proc, c->thread);
	int rc;

	if (!th || th->gone)
		return ulp_errorf(-ESRCH, "thread %d of process %d is gone", c->thread,
				  c->proc->pid);
	rc = ulp_thread_stop(c->proc, th);
	if (rc < 0)
		return rc;
	th = ulp_process_find_thread(c->proc, c->thread);
	rc = ulp_remote_call(c->proc, th, fn, &arg, 1, ret, ULP_CALLBACK_TIMEOUT_MS);
	th = ulp_process_find_thread(c->proc, c->thread);
	if (th)
		ulp_thread_resume(c->proc, th);
	return rc;
}

/*
 * The target's struct ulp_object tells the callback, through
 * ulp_object_describe(), what the object is doing; then the callback runs
 * and the lines it logged join the event log right after ulp's own.
 */
static int ulp_callback_run(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			    struct ulp_applied_object *os, enum ulp_callback cb, int state,
			    int *result)
{
	uint64_t fn = ulp_callback_addr(os, cb), obj = ap->bias + os->info->desc, ret = 0;
	int32_t st = state;
	bool patched = os->patched;
	int rc;

	*result = 0;
	if (!fn)
		return 0;
	rc = ulp_mem_write(c->proc, obj + offsetof(struct ulp_object, state), &st, sizeof(st));
	if (rc == 0)
		rc = ulp_mem_write(c->proc, obj + offsetof(struct ulp_object, patched), &patched,
				   sizeof(patched));
	if (rc == 0)
		rc = c->thread ? ulp_call_on_thread(c, ap->bias + fn, obj, &ret)
			       : ulp_runtime_call(c->target, c->proc, ap->bias + fn, &obj, 1, &ret);
	ulp_runtime_drain_log(c->target, c->proc);
	if (rc < 0)
		return ulp_error_prefix(rc, "patch '%s': a callback for object '%s' did not run",
					ap->info->name, os->name);
	*result = (int)(int32_t)(uint32_t)ret;
	return 0;
}

int ulp_callback_pre_patch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			   struct ulp_applied_object *os, int state)
{
	int result, rc = ulp_callback_run(c, ap, os, ULP_PRE_PATCH, state, &result);

	if (rc == 0 && result > 0)
		result = -EINVAL; /* not an errno: refuse all the same */
	if (rc == 0)
		rc = result;
	os->post_unpatch_enabled = rc == 0;
	return rc;
}

void ulp_callback_post_patch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			     struct ulp_applied_object *os, int state)
{
	int result;

	ulp_callback_run(c, ap, os, ULP_POST_PATCH, state, &result);
}

void ulp_callback_pre_unpatch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			      struct ulp_applied_object *os, int state)
{
	int result;

	ulp_callback_run(c, ap, os, ULP_PRE_UNPATCH, state, &result);
}

void ulp_callback_post_unpatch(struct ulp_callback_ctx *c, struct ulp_applied_patch *ap,
			       struct ulp_applied_object *os, int state)
{
	int result;

	if (os->post_unpatch_enabled)
		ulp_callback_run(c, ap, os, ULP_POST_UNPATCH, state, &result);
	os->post_unpatch_enabled = false;
}
