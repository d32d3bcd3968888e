/* SPDX-License-Identifier: MIT */
#include "procfs.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

const char *ulp_proc_stat_fields(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	char *s;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	s = strrchr(buf, ')');
	if (!s || s[1] != ' ' || s[2] == '\0')
		return NULL;
	return s + 2;
}

bool ulp_proc_exited(pid_t pid)
{
	char buf[512];
	const char *state = ulp_proc_stat_fields(pid, buf, sizeof(buf));

	return !state || state[0] == 'Z' || state[0] == 'X';
}

int ulp_proc_maps_read(pid_t pid, struct ulp_map_area **out, size_t *nr)
{
	char path[64], line[4352];
	struct ulp_map_area *areas = NULL;
	size_t n = 0, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, "%llx-%llx", &s, &e) != 2)
			continue;
		if (n == cap) {
			struct ulp_map_area *a;

			cap = cap ? cap * 2 : 64;
			a = realloc(areas, cap * sizeof(*a));
			if (!a) {
				free(areas);
				fclose(f);
				return ulp_errorf(-ENOMEM, "out of memory");
			}
			areas = a;
		}
		areas[n].start = s;
		areas[n].end = e;
		areas[n].heap = strstr(line, "[heap]") != NULL;
		areas[n].stack = strstr(line, "[stack]") != NULL;
		n++;
	}
	fclose(f);
	*out = areas;
	*nr = n;
	return 0;
}

static int ulp_pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* The numeric entries of a /proc directory, ascending; -errno (no message) if unreadable. */
static int ulp_proc_numbers(const char *path, pid_t **out, size_t *nr)
{
	struct dirent *de;
	pid_t *tids = NULL, *n;
	size_t cnt = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		long tid = strtol(de->d_name, NULL, 10);

		if (tid <= 0)
			continue;
		n = realloc(tids, (cnt + 1) * sizeof(*n));
		if (!n) {
			closedir(d);
			free(tids);
			return ulp_errorf(-ENOMEM, "out of memory");
		}
		tids = n;
		tids[cnt++] = (pid_t)tid;
	}
	closedir(d);
	if (cnt)
		qsort(tids, cnt, sizeof(*tids), ulp_pid_cmp);
	*out = tids;
	*nr = cnt;
	return 0;
}

int ulp_proc_tasks(pid_t pid, pid_t **out, size_t *nr)
{
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	ret = ulp_proc_numbers(path, out, nr);
	if (ret == -ENOMEM)
		return ret;
	return ret < 0 ? ulp_errorf(-ESRCH, "no such process: %d", pid) : 0;
}

int ulp_proc_pids(pid_t **out, size_t *nr)
{
	int ret = ulp_proc_numbers("/proc", out, nr);

	if (ret == -ENOMEM)
		return ret;
	return ret < 0 ? ulp_errorf(ret, "cannot read /proc: %s", strerror(-ret)) : 0;
}

pid_t ulp_proc_parent(pid_t pid)
{
	char buf[1024];
	const char *s = ulp_proc_stat_fields(pid, buf, sizeof(buf));
	int ppid = 0;

	/* s is field 3, the state; field 4 the real parent's thread group id */
	if (s)
		sscanf(s, "%*c %d", &ppid);
	return (pid_t)ppid;
}

unsigned long long ulp_proc_start_time(pid_t pid)
{
	char buf[1024];
	const char *s = ulp_proc_stat_fields(pid, buf, sizeof(buf));
	unsigned long long start = 0;

	/* s is field 3; starttime is field 22 */
	for (int field = 3; field < 22 && s; field++) {
		s = strchr(s, ' ');
		if (s)
			s++;
	}
	if (s)
		sscanf(s, "%llu", &start);
	return start;
}

bool ulp_proc_maps_has_code(pid_t pid, const char *needle)
{
	char path[64], line[4352];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *perms = strchr(line, ' ');

		found = perms && perms[3] == 'x' && strstr(line, needle) != NULL;
	}
	fclose(f);
	return found;
}

int ulp_proc_take_fd(pid_t pid, int tfd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), fd = -1, err;

	if (pidfd >= 0)
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
	err = errno;
	if (pidfd >= 0)
		close(pidfd);
	if (fd < 0)
		return -err;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}
