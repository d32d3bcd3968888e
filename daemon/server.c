/* SPDX-License-Identifier: MIT */
/* The control socket: one JSON request line in, one JSON reply out, per connection. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"

#define ULPD_REQUEST_MAX (1 << 20)
#define ULPD_READ_TIMEOUT_MS 5000

static volatile sig_atomic_t ulpd_stop;

static void ulpd_on_signal(int sig)
{
	(void)sig;
	ulpd_stop = 1;
}

static int ulpd_mkdir_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int ulpd_listen(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, probe;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "ulpd: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	if (ulpd_mkdir_parent(path) < 0) {
		fprintf(stderr, "ulpd: cannot create the directory of %s: %m\n", path);
		return -1;
	}
	/* A live ulpd already there must not be stolen from. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		fprintf(stderr, "ulpd: another ulpd is serving %s\n", path);
		close(probe);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		fprintf(stderr, "ulpd: cannot listen on %s: %m\n", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static char *ulpd_read_line(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	while (buf) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, ULPD_READ_TIMEOUT_MS) <= 0)
			break;
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (memchr(buf, '\n', len))
			return buf;
		if (len + 1 == cap) {
			char *nb;

			if (cap >= ULPD_REQUEST_MAX)
				break;
			nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	if (buf && len) {
		buf[len] = '\0';
		return buf;
	}
	free(buf);
	return NULL;
}

static void ulpd_write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

void ulpd_send_reply(int fd, struct json_object *reply)
{
	const char *out = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);

	ulpd_write_all(fd, out, strlen(out));
	ulpd_write_all(fd, "\n", 1);
	json_object_put(reply);
	close(fd);
}

static void ulpd_serve_client(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct json_object *req = NULL, *reply;
	char *line;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return;
	}
	line = ulpd_read_line(fd);
	if (line)
		req = json_tokener_parse(line);
	free(line);
	if (!req || !json_object_is_type(req, json_type_object)) {
		reply = json_object_new_object();
		json_object_object_add(reply, "ok", json_object_new_boolean(0));
		json_object_object_add(
			reply, "error",
			json_object_new_string("malformed request: expected one JSON object"));
		json_object_object_add(reply, "errno", json_object_new_int(EINVAL));
	} else {
		reply = ulpd_handle_request(req, cred.uid, fd);
	}
	json_object_put(req);
	if (reply)
		ulpd_send_reply(fd, reply);
}

#define ULPD_MAX_WAITING 256

int ulpd_serve(const struct ulpd_config *cfg)
{
	struct sigaction sa = { .sa_handler = ulpd_on_signal };
	int lfd;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = ulpd_listen(cfg->socket_path);
	if (lfd < 0)
		return 1;
	while (!ulpd_stop) {
		struct pollfd pfd[1 + 2 * ULPD_MAX_WAITING];
		int fds[ULPD_MAX_WAITING], hooks[ULPD_MAX_WAITING], timeout = ulpd_tick(), n;
		size_t nw = ulpd_waiting_fds(fds, ULPD_MAX_WAITING);
		size_t nh = ulpd_hook_fds(hooks, ULPD_MAX_WAITING);

		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		/* clients shut their side down after the request: only a hang-up counts */
		for (size_t i = 0; i < nw; i++)
			pfd[1 + i] = (struct pollfd){ .fd = fds[i], .events = 0 };
		for (size_t i = 0; i < nh; i++)
			pfd[1 + nw + i] = (struct pollfd){ .fd = hooks[i], .events = POLLIN };
		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		n = poll(pfd, 1 + nw + nh, timeout);
		if (n <= 0)
			continue;
		/* a thread waits inside dlopen() or dlclose(): first */
		for (size_t i = 0; i < nh; i++)
			if (pfd[1 + nw + i].revents)
				ulpd_hook_ready(hooks[i]);
		/* a client that stopped waiting (Ctrl-C): the transition goes on */
		for (size_t i = 0; i < nw; i++)
			if (pfd[1 + i].revents & (POLLHUP | POLLERR))
				ulpd_client_gone(fds[i]);
		if (pfd[0].revents & POLLIN) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (cfd >= 0)
				ulpd_serve_client(cfd);
		}
	}
	close(lfd);
	unlink(cfg->socket_path);
	ulpd_targets_free();
	return 0;
}
