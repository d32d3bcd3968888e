// SPDX-License-Identifier: MIT
/*
 * tracer.c - ulp_test_tracer PID: attach to PID with ptrace and stay
 * attached, so ulp finds the process already traced.
 *
 * Uses PTRACE_ATTACH on the thread group leader, resumes it at once and
 * forwards every signal, so the target keeps running normally while
 * traced.  Prints "attached" on stdout once it holds the process.  Exits
 * (and the kernel detaches) when killed or when the target exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	pid_t pid;
	int status;
	int first = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PID\n", argv[0]);
		return 2;
	}
	pid = (pid_t)atol(argv[1]);
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL)) {
		perror("PTRACE_ATTACH");
		return 1;
	}
	for (;;) {
		int sig = 0;

		if (waitpid(pid, &status, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			perror("waitpid");
			return 1;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return 0;
		if (!WIFSTOPPED(status))
			continue;
		sig = WSTOPSIG(status);
		/* The SIGSTOP PTRACE_ATTACH sent is ours: swallow it. */
		if (first && sig == SIGSTOP) {
			sig = 0;
			first = 0;
			if (ptrace(PTRACE_CONT, pid, NULL, NULL)) {
				perror("PTRACE_CONT");
				return 1;
			}
			printf("attached\n");
			fflush(stdout);
			continue;
		}
		if (ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig) && errno != ESRCH) {
			perror("PTRACE_CONT");
			return 1;
		}
	}
}
