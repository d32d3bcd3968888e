/* SPDX-License-Identifier: MIT */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ulpctl_request(const char *socket_path, struct json_object *req, struct json_object **reply)
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
	if (dprintf(fd, "%s\n", out) < 0) {
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
