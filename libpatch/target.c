/* SPDX-License-Identifier: MIT */
/* A target process as the engine remembers it between requests. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine.h"
#include "error.h"
#include "patch.h"
#include "process.h"
#include "procfs.h"
#include "replace.h"

int ulp_target_new(pid_t pid, struct ulp_target **out)
{
	struct ulp_target *t;
	char path[64];
	ssize_t n;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	t = calloc(1, sizeof(*t));
	if (!t)
		return ulp_errorf(-ENOMEM, "out of memory");
	t->pid = pid;
	t->hook_fd = -1;
	t->worker_fd = -1;
	t->worker_tfd = -1;
	/*
	 * Answers to calls an earlier ulpd (or a forked worker) sent may wait
	 * in the channel: a random start keeps their numbers from matching.
	 */
	if (getrandom(&t->worker_seq, sizeof(t->worker_seq), 0) != sizeof(t->worker_seq))
		t->worker_seq = ulp_now_us() ^ ((uint64_t)getpid() << 32);
	t->start_time = ulp_proc_start_time(pid);
	if (!t->start_time) {
		free(t);
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, t->exe, sizeof(t->exe) - 1);
	t->exe[n > 0 ? n : 0] = '\0';
	*out = t;
	return 0;
}

bool ulp_target_alive(const struct ulp_target *t)
{
	return ulp_proc_start_time(t->pid) == t->start_time;
}

static void ulp_applied_patch_free(struct ulp_applied_patch *ap)
{
	if (!ap)
		return;
	for (size_t i = 0; i < ap->nr_objs; i++) {
		free(ap->objs[i].name);
		ulp_object_forget_funcs(&ap->objs[i]);
	}
	free(ap->objs);
	ulp_nop_infos_free(ap->nop_infos, ap->nr_nop_infos);
	free(ap->symref_addrs);
	free(ap->symref_bias);
	free(ap->symref_tls);
	free(ap->path);
	free(ap->display);
	ulp_patch_info_free(ap->info);
	free(ap);
}

void ulp_target_free(struct ulp_target *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nr_patches; i++)
		ulp_applied_patch_free(t->patches[i]);
	free(t->patches);
	/* a patch being loaded: a saved view read back has one when ulpd died meanwhile */
	ulp_applied_patch_free(t->applying);
	ulp_target_end_transition(t);
	if (t->hook_fd >= 0)
		close(t->hook_fd);
	if (t->worker_fd >= 0)
		close(t->worker_fd);
	for (size_t i = 0; i < t->nr_log; i++)
		free(t->log[i]);
	free(t->log);
	free(t->slot_pages);
	free(t);
}

void ulp_target_end_transition(struct ulp_target *t)
{
	if (!t->transition)
		return;
	free(t->transition->threads);
	free(t->transition);
	t->transition = NULL;
}

struct ulp_applied_patch *ulp_target_find_patch(struct ulp_target *t, const char *name)
{
	for (size_t i = 0; i < t->nr_patches; i++)
		if (strcmp(t->patches[i]->info->name, name) == 0)
			return t->patches[i];
	return NULL;
}

void (*ulp_target_log_hook)(const struct ulp_target *t, const char *line);

void ulp_target_log(struct ulp_target *t, const char *fmt, ...)
{
	char **n;
	char *line;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	if (!line)
		return;
	n = realloc(t->log, (t->nr_log + 1) * sizeof(*n));
	if (!n) {
		free(line);
		return;
	}
	t->log = n;
	t->log[t->nr_log++] = line;
	if (ulp_target_log_hook)
		ulp_target_log_hook(t, line);
}

void ulp_target_remove_patch_keep(struct ulp_target *t, struct ulp_applied_patch *ap)
{
	for (size_t i = 0; i < t->nr_patches; i++) {
		if (t->patches[i] != ap)
			continue;
		memmove(&t->patches[i], &t->patches[i + 1],
			(t->nr_patches - i - 1) * sizeof(t->patches[0]));
		t->nr_patches--;
		return;
	}
}

void ulp_target_remove_patch(struct ulp_target *t, struct ulp_applied_patch *ap)
{
	ulp_target_remove_patch_keep(t, ap);
	ulp_applied_patch_free(ap);
}

int ulp_target_add_patch(struct ulp_target *t, struct ulp_applied_patch *ap)
{
	struct ulp_applied_patch **n = realloc(t->patches, (t->nr_patches + 1) * sizeof(*n));

	if (!n)
		return ulp_errorf(-ENOMEM, "out of memory");
	t->patches = n;
	t->patches[t->nr_patches++] = ap;
	return 0;
}

void ulp_applied_patch_destroy(struct ulp_applied_patch *ap)
{
	ulp_applied_patch_free(ap);
}
