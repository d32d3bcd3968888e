/* SPDX-License-Identifier: MIT */
#include "memory.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "error.h"

int ulp_mem_read(struct ulp_process *p, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)addr, .iov_len = len };
	ssize_t n = process_vm_readv(p->pid, &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	/* Pages without read permission (PROT_EXEC only) fail above but
	 * /proc/PID/mem reads them. */
	n = pread(p->mem_fd, buf, len, (off_t)addr);
	if (n == (ssize_t)len)
		return 0;
	/* /proc/PID/mem reads nothing at all once the process has let go of its memory */
	if (n == 0)
		return ulp_errorf(-ESRCH, "process %d exited", p->pid);
	return ulp_errorf(n < 0 ? -errno : -EFAULT,
			  "cannot read %zu bytes at 0x%llx in process %d: %s", len,
			  (unsigned long long)addr, p->pid, n < 0 ? strerror(errno) : "short read");
}

int ulp_mem_write(struct ulp_process *p, uint64_t addr, const void *buf, size_t len)
{
	ssize_t n = pwrite(p->mem_fd, buf, len, (off_t)addr);

	if (n == (ssize_t)len)
		return 0;
	if (n == 0)
		return ulp_errorf(-ESRCH, "process %d exited", p->pid);
	return ulp_errorf(
		n < 0 ? -errno : -EFAULT, "cannot write %zu bytes at 0x%llx in process %d: %s", len,
		(unsigned long long)addr, p->pid, n < 0 ? strerror(errno) : "short write");
}

int ulp_mem_read_u64(struct ulp_process *p, uint64_t addr, uint64_t *val)
{
	return ulp_mem_read(p, addr, val, sizeof(*val));
}

int ulp_mem_write_u64(struct ulp_process *p, uint64_t addr, uint64_t val)
{
	return ulp_mem_write(p, addr, &val, sizeof(val));
}

int ulp_mem_read_string(struct ulp_process *p, uint64_t addr, char *buf, size_t len)
{
	size_t got = 0;

	/* Read page by page so a string ending just before an unmapped page
	 * still reads. */
	while (got + 1 < len) {
		size_t chunk = 4096 - ((addr + got) & 4095);
		char *nul;
		int ret;

		if (chunk > len - 1 - got)
			chunk = len - 1 - got;
		ret = ulp_mem_read(p, addr + got, buf + got, chunk);
		if (ret < 0)
			return ret;
		nul = memchr(buf + got, '\0', chunk);
		if (nul)
			return 0;
		got += chunk;
	}
	buf[len - 1] = '\0';
	return 0;
}
