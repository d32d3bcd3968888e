/* SPDX-License-Identifier: MIT */
#include "memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "procfs.h"

int ulp_memfd_fill(pid_t pid, int tfd, const char *path, const char *what)
{
	int in = -1, fd, ret = 0;

	fd = ulp_proc_take_fd(pid, tfd);
	if (fd < 0)
		return ulp_errorf(fd, "cannot take the memfd for %s from process %d: %s", what, pid,
				  strerror(-fd));
	if ((in = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		ret = ulp_errorf(-errno, "cannot open %s: %s", path, strerror(errno));
	while (ret == 0) {
		char buf[65536];
		ssize_t n = read(in, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0 || write(fd, buf, (size_t)n) != n)
			ret = ulp_errorf(-EIO, "cannot copy %s into process %d: %s", path, pid,
					 strerror(errno));
	}
	if (ret == 0 &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		ret = ulp_errorf(-errno, "cannot seal the memfd for %s in process %d: %s", what,
				 pid, strerror(errno));
	if (in >= 0)
		close(in);
	close(fd);
	return ret;
}
