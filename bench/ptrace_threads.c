// SPDX-License-Identifier: MIT
/* ptrace_threads.c - see ptrace_threads.h. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "ptrace_threads.h"

static struct pt_thread *find(struct pt_threads *ts, pid_t tid)
{
	for (size_t i = 0; i < ts->nr; i++)
		if (ts->t[i].tid == tid)
			return &ts->t[i];
	return NULL;
}

int pt_seize_all(struct pt_threads *ts, pid_t pid)
{
	char path[64];
	int added;

	/* A thread may start while the directory is read: read it again
	 * until nothing new turns up. */
	do {
		struct dirent *de;
		DIR *d;

		added = 0;
		snprintf(path, sizeof(path), "/proc/%d/task", pid);
		d = opendir(path);
		if (!d)
			return -errno;
		while ((de = readdir(d))) {
			pid_t tid = atoi(de->d_name);
			struct pt_thread *n;

			if (tid <= 0 || find(ts, tid))
				continue;
			if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
				if (errno == ESRCH)
					continue;
				closedir(d);
				return -errno;
			}
			n = realloc(ts->t, (ts->nr + 1) * sizeof(*ts->t));
			if (!n) {
				closedir(d);
				return -ENOMEM;
			}
			ts->t = n;
			ts->t[ts->nr++] = (struct pt_thread){ .tid = tid };
			added++;
		}
		closedir(d);
	} while (added);
	return 0;
}

int pt_stop_all(struct pt_threads *ts)
{
	size_t left = 0;

	for (size_t i = 0; i < ts->nr; i++) {
		if (ts->t[i].stopped)
			continue;
		if (ptrace(PTRACE_INTERRUPT, ts->t[i].tid, 0, 0) < 0)
			return -errno;
		left++;
	}
	while (left) {
		int status;
		pid_t tid = waitpid(-1, &status, __WALL);
		struct pt_thread *t;

		if (tid < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		t = find(ts, tid);
		if (!t || !WIFSTOPPED(status))
			return -ESRCH; /* a thread came or went: the target must be stable */
		/* Not our interrupt: a signal for the target; keep it, stay stopped. */
		if (status >> 16 != PTRACE_EVENT_STOP)
			t->sig = WSTOPSIG(status);
		if (!t->stopped) {
			t->stopped = true;
			left--;
		}
	}
	return 0;
}

int pt_resume_all(struct pt_threads *ts)
{
	for (size_t i = 0; i < ts->nr; i++) {
		if (ptrace(PTRACE_CONT, ts->t[i].tid, 0, (void *)(long)ts->t[i].sig) < 0)
			return -errno;
		ts->t[i].stopped = false;
		ts->t[i].sig = 0;
	}
	return 0;
}

void pt_detach_all(struct pt_threads *ts)
{
	for (size_t i = 0; i < ts->nr; i++)
		ptrace(PTRACE_DETACH, ts->t[i].tid, 0, (void *)(long)ts->t[i].sig);
}
