/* SPDX-License-Identifier: MIT */
/*
 * The patch store (store.h).  Files are named HASH-SIZE.so (SHA-256 of the
 * contents, by the kernel; FNV-1a 64 without AF_ALG): a name already taken
 * by other contents gets a suffix, and every hit is compared byte for
 * byte, so the hash is only ever a way to find a copy quickly.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/if_alg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "store.h"

/* A patch is a shared object of functions: far below this. */
#define ULPD_STORE_MAX (64u << 20)

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

/*
 * SHA-256 of data as lowercase hex, by the kernel (AF_ALG): no crypto
 * library is among ulp's dependencies, and names an attacker could make
 * collide would let them keep a patch out of the store.  -errno if the
 * kernel has no AF_ALG.
 */
static int ulpd_sha256_hex(const char *data, size_t len, char out[65])
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG,
				   .salg_type = "hash",
				   .salg_name = "sha256" };
	unsigned char sum[32];
	int tfm, op = -1, ret = 0;

	tfm = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (tfm < 0)
		return -errno;
	if (bind(tfm, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (op = accept4(tfm, NULL, NULL, SOCK_CLOEXEC)) < 0)
		ret = -errno;
	for (size_t off = 0; ret == 0 && off < len;) {
		size_t chunk = len - off > 65536 ? 65536 : len - off;
		ssize_t n = send(op, data + off, chunk, off + chunk < len ? MSG_MORE : 0);

		if (n <= 0)
			ret = n < 0 ? -errno : -EIO;
		else
			off += (size_t)n;
	}
	if (ret == 0 && len == 0 && send(op, "", 0, 0) < 0)
		ret = -errno;
	if (ret == 0 && read(op, sum, sizeof(sum)) != (ssize_t)sizeof(sum))
		ret = -EIO;
	if (op >= 0)
		close(op);
	close(tfm);
	for (int i = 0; ret == 0 && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sum[i]);
	return ret;
}

int ulpd_store_snapshot(int fd, const char *name, int *out)
{
	char *data;
	size_t len;
	int mfd = -1, ret = ulpd_read_all(fd, name, &data, &len);

	if (ret < 0)
		return ret;
	mfd = memfd_create("ulpd-patch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		ret = ulp_errorf(-errno, "%s: %s", name, strerror(errno));
	for (size_t off = 0; ret == 0 && off < len;) {
		ssize_t w = write(mfd, data + off, len - off);

		if (w <= 0)
			ret = ulp_errorf(-errno, "%s: %s", name, strerror(errno));
		else
			off += (size_t)w;
	}
	if (ret == 0 && (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0 ||
			 lseek(mfd, 0, SEEK_SET) < 0))
		ret = ulp_errorf(-errno, "%s: %s", name, strerror(errno));
	free(data);
	if (ret < 0) {
		if (mfd >= 0)
			close(mfd);
		return ret;
	}
	*out = mfd;
	return 0;
}

int ulpd_store_put(int fd, const char *name, char *out, size_t outlen)
{
	char dir[4200], id[65], *data;
	size_t len;
	int ret = ulpd_read_all(fd, name, &data, &len);

	if (ret < 0)
		return ret;
	if (ulpd_sha256_hex(data, len, id) < 0) {
		/* no AF_ALG: FNV-1a; every hit is compared byte for byte anyway */
		uint64_t h = 0xcbf29ce484222325ull;

		for (size_t i = 0; i < len; i++)
			h = (h ^ (unsigned char)data[i]) * 0x100000001b3ull;
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)h);
	}
	snprintf(dir, sizeof(dir), "%s/patches", ulpd_store_dir);
	if ((mkdir(ulpd_store_dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		ret = ulp_errorf(-errno, "cannot create the patch store %s: %s", dir,
				 strerror(errno));
		free(data);
		return ret;
	}
	ret = ulp_errorf(-EEXIST,
			 "%s: the patch store %s holds too many other files under its name", name,
			 dir);
	for (int k = 0; k < 100; k++) {
		int same;

		if (k)
			snprintf(out, outlen, "%s/%s-%zu-%d.so", dir, id, len, k);
		else
			snprintf(out, outlen, "%s/%s-%zu.so", dir, id, len);
		same = ulpd_same_file(out, data, len);
		if (same < 0) {
			ret = ulp_errorf(same, "cannot read %s: %s", out, strerror(-same));
			break;
		}
		if (same == 1) {
			ret = 0; /* stored before */
			break;
		}
		if (access(out, F_OK) == 0)
			continue; /* the same name, other contents */
		ret = ulpd_store_write(out, data, len);
		break;
	}
	free(data);
	if (ret == 0)
		ulp_error_clear();
	return ret;
}

void ulpd_store_gc(bool (*in_use)(const char *path))
{
	char dir[4200], path[4500];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/patches", ulpd_store_dir);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n < 4 || strcmp(e->d_name + n - 3, ".so") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!in_use(path))
			unlink(path);
	}
	if (d)
		closedir(d);
}
