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
#include "dlhook.h"
#include "rt_abi.h"

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

static int ulp_call_in_hook(struct ulp_callback_ctx *c, uint64_t fn, uint64_t arg, uint64_t *ret)
{
	struct ulp_hook_cmd cmd = { .op = ULP_HOOK_CALL, .fn = fn, .arg = arg };
	struct ulp_hook_result res;
	int rc = ulp_hook_send(c->hook_fd, &cmd);

	if (rc == 0)
		rc = ulp_hook_recv(c->hook_fd, c->proc, &res, sizeof(res), ULP_CALLBACK_TIMEOUT_MS);
	if (rc < 0)
		return ulp_errorf(
			rc, "the thread loading an object in process %d did not run a callback",
			c->proc->pid);
	*ret = (uint64_t)res.ret;
	return 0;
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
		rc = c->hook_fd >= 0
			     ? ulp_call_in_hook(c, ap->bias + fn, obj, &ret)
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
