/* SPDX-License-Identifier: MIT */
/*
 * ptrace_threads.h - every thread of a process under ptrace, stopped and
 * resumed all at once: what ulp_bench_stop_all (the kernel's floor under a
 * stop-all) and ulp_bench_stop_check (a stop-the-world safety check) both
 * time, so that both time the same thing.
 *
 * The threads are seized (PTRACE_SEIZE: they keep running); a stop is a
 * PTRACE_INTERRUPT to each, then a waitpid() for each stop.  The target
 * must not create or end threads meanwhile.  A signal that arrives for the
 * target while a thread is ours is kept and delivered when it is resumed.
 */
#ifndef ULP_BENCH_PTRACE_THREADS_H
#define ULP_BENCH_PTRACE_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pt_thread {
	pid_t tid;
	bool stopped;
	int sig; /* a signal the target must still receive */
};

struct pt_threads {
	struct pt_thread *t;
	size_t nr;
};

/* Seize every thread of pid, until a pass over /proc/PID/task finds no new
 * one.  0 or -errno. */
int pt_seize_all(struct pt_threads *ts, pid_t pid);
/* Interrupt every thread not yet stopped, all at once, then wait until all
 * are stopped.  0 or -errno (-ESRCH: a thread came or went). */
int pt_stop_all(struct pt_threads *ts);
/* Resume every thread, with the signal it kept.  0 or -errno. */
int pt_resume_all(struct pt_threads *ts);
/* Detach every thread; PTRACE_DETACH needs them stopped. */
void pt_detach_all(struct pt_threads *ts);

#endif
