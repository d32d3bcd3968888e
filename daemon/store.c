/* SPDX-License-Identifier: MIT */
/*
 * The patch store (store.h).  Files are named HASH-SIZE.so (FNV-1a 64 of
 * the contents): a name already taken by other contents gets a suffix, so
 * the store never relies on the hash for anything but finding a copy
 * quickly, every hit is compared byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "store.h"

/* A patch is a shared object of functions: far below this. */
#define ULPD_STORE_MAX (256u << 20)

static char ulpd_store_dir[4096] = "/var/lib/ulp";

void ulpd_store_set_dir(const char *state_dir)
{
	snprintf(ulpd_store_dir, sizeof(ulpd_store_dir), "%s", state_dir);
}

static int ulpd_read_all(int fd, const char *name, char **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			return ulp_errorf(-e, "cannot read patch file %s: %s", name, strerror(e));
		}
		if (r == 0) {
			*out = buf;
			*len = n;
			return 0;
		}
		n += (size_t)r;
		if (n == cap) {
			char *nb = cap >= ULPD_STORE_MAX ? NULL : realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return ulp_errorf(-EFBIG, "patch file %s is too large", name);
			}
			buf = nb;
			cap *= 2;
		}
	}
	return ulp_errorf(-ENOMEM, "out of memory");
}

/* Does the file at path hold exactly data? */
static int ulpd_same_file(const char *path, const char *data, size_t len)
{
	char *have;
	size_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = ulpd_read_all(fd, path, &have, &n);
	close(fd);
	if (ret < 0)
		return ret;
	ret = n == len && memcmp(have, data, len) == 0;
	free(have);
	return ret;
}

static int ulpd_store_write(const char *path, const char *data, size_t len)
{
	char tmp[4200];
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ulp_errorf(-errno, "cannot write %s: %s", tmp, strerror(errno));
	for (size_t off = 0; off < len && ret == 0;) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			ret = ulp_errorf(-errno, "cannot write %s: %s", tmp, strerror(errno));
		else
			off += (size_t)w;
	}
	/* whole on disk before it takes its name: a crash leaves no torn copy */
	if (ret == 0 && fsync(fd) < 0)
		ret = ulp_errorf(-errno, "cannot write %s: %s", tmp, strerror(errno));
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = ulp_errorf(-errno, "cannot store %s: %s", path, strerror(errno));
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int ulpd_store_put(int fd, const char *name, char *out, size_t outlen)
{
	uint64_t h = 0xcbf29ce484222325ull;
	char dir[4200], *data;
	size_t len;
	int ret = ulpd_read_all(fd, name, &data, &len);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)data[i]) * 0x100000001b3ull;
	snprintf(dir, sizeof(dir), "%s/patches", ulpd_store_dir);
	if ((mkdir(ulpd_store_dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		ret = ulp_errorf(-errno, "cannot create the patch store %s: %s", dir,
				 strerror(errno));
		free(data);
		return ret;
	}
	for (int k = 0; k < 100; k++) {
		if (k)
			snprintf(out, outlen, "%s/%016llx-%zu-%d.so", dir, (unsigned long long)h,
				 len, k);
		else
			snprintf(out, outlen, "%s/%016llx-%zu.so", dir, (unsigned long long)h, len);
		ret = ulpd_same_file(out, data, len);
		if (ret == 1) {
			ret = 0; /* stored before */
			break;
		}
		if (ret < 0)
			break;
		if (access(out, F_OK) == 0)
			continue; /* the same name, other contents */
		ret = ulpd_store_write(out, data, len);
		break;
	}
	free(data);
	return ret;
}
