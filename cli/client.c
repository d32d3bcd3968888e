/* SPDX-License-Identifier: MIT */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * The request line, with file (unless -1) passed along it (SCM_RIGHTS):
 * ulpd reads the patch through it, not by path.
 */
static int ulpctl_send(int fd, const char *out, int file)
{
	size_t len = strlen(out), off = 0;
	char *line = malloc(len + 2);

	if (!line)
		return -1;
	memcpy(line, out, len);
	line[len++] = '\n';
	while (off < len) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = line + off, .iov_len = len - off };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (off == 0 && file >= 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			msg.msg_control = ctl.buf;
			msg.msg_controllen = sizeof(ctl.buf);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &file, sizeof(int));
		}
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(line);
			return -1;
		}
		off += (size_t)n;
	}
	free(line);
	return 0;
}

int ulpctl_request(const char *socket_path, struct json_object *req, struct json_object **reply)
{
	return ulpctl_request_file(socket_path, req, -1, reply);
}

int ulpctl_request_file(const char *socket_path, struct json_object *req, int file,
			struct json_object **reply)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *out = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	size_t len = 0, cap = 65536;
	char *buf;
	int fd;

	if (strlen(socket_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "ulpctl: socket path too long: %s\n", socket_path);
		return -1;
	}
	strcpy(addr.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "ulpctl: cannot connect to ulpd at %s: %s (is ulpd running?)\n",
			socket_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (ulpctl_send(fd, out, file) < 0) {
		fprintf(stderr, "ulpctl: cannot send the request to ulpd: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	buf = malloc(cap);
	while (buf) {
		ssize_t n = read(fd, buf + len, cap - len - 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	if (!buf)
		return -1;
	buf[len] = '\0';
	*reply = len ? json_tokener_parse(buf) : NULL;
	free(buf);
	if (!*reply) {
		fprintf(stderr, "ulpctl: no valid reply from ulpd (did it exit?)\n");
		return -1;
	}
	return 0;
}
