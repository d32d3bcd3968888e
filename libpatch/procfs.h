/* SPDX-License-Identifier: MIT */
/* Small readers of /proc/PID files the engine needs in several places. */
#ifndef ULP_PROCFS_H
#define ULP_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read /proc/PID/stat (or /proc/PID/task/TID/stat: pass the tid) into buf
 * and return a pointer to its third field (the state letter), past the
 * command name which may itself hold spaces and parentheses.  NULL if the
 * task does not exist.
 */
const char *ulp_proc_stat_fields(pid_t pid, char *buf, size_t len);

/* The task has exited: a zombie (or dead) already, or no such task. */
bool ulp_proc_exited(pid_t pid);
/* Field 22 of /proc/PID/stat, its start time: tells a reused PID; 0 if gone. */
unsigned long long ulp_proc_start_time(pid_t pid);

struct ulp_map_area {
	uint64_t start, end;
	bool heap; /* [heap]: brk grows upward from its end */
	bool stack; /* [stack]: the main thread's stack grows downward from its start */
};

/* The mappings of /proc/PID/maps, in address order.  -ESRCH if no such process. */
int ulp_proc_maps_read(pid_t pid, struct ulp_map_area **out, size_t *nr);

/*
 * A copy (close-on-exec) of the process's file descriptor tfd
 * (pidfd_getfd: ulpd takes its end of a channel from the target), or
 * -errno.
 */
int ulp_proc_take_fd(pid_t pid, int tfd);

/*
 * Does the process run code of a file whose name contains needle: an
 * executable mapping of it?  A file mapped only to be read (ulpd's own
 * cache of ELF files, a debugger's) does not count.
 */
bool ulp_proc_maps_has_code(pid_t pid, const char *needle);

/* The processes of /proc, ascending. */
int ulp_proc_pids(pid_t **out, size_t *nr);

/* The real parent of pid (field 4 of /proc/PID/stat), 0 if unknown. */
pid_t ulp_proc_parent(pid_t pid);

/* The thread ids of /proc/PID/task, ascending.  -ESRCH if no such process. */
int ulp_proc_tasks(pid_t pid, pid_t **out, size_t *nr);

#endif
