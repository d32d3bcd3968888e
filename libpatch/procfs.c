/* SPDX-License-Identifier: MIT */
#include "procfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
