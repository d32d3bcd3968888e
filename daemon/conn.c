/* SPDX-License-Identifier: MIT */
/*
 * Client connections, read and written without ever blocking ulpd's loop.
 * The loop also serves the loader hooks of patched processes (a thread
 * waits inside dlopen() for ulpd) and programs starting under --persist
 * (waiting in execve()): a client that sends its request slowly, or does
 * not read its reply (a stopped ulpctl, a full socket buffer for a large
 * status), must stall none of them.  A request is one line; a reply is one
 * line, and the connection is closed once it is written.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conn.h"
#include "daemon.h"
#include "process.h"

/* The largest request read; past it, what came is handled as the request. */
#define ULPD_REQUEST_MAX (1 << 20)
/* How long a client may take to send its request, and to read its reply. */
#define ULPD_READ_TIMEOUT_US (5 * 1000000ull)
#define ULPD_WRITE_TIMEOUT_US (30 * 1000000ull)

struct ulpd_conn {
	int fd;
	bool writing; /* else reading the request */
	int passed; /* the file sent with the request, or -1 */
	struct ucred cred;
	char *buf; /* the request so far, or the reply */
	size_t len, cap, off; /* off: reply bytes sent */
	uint64_t deadline_us;
};

static struct ulpd_conn ulpd_conns[ULPD_CONNS_MAX];
static size_t ulpd_nr_conns;

static void ulpd_conn_drop(size_t i)
{
	struct ulpd_conn *c = &ulpd_conns[i];

	close(c->fd);
	if (c->passed >= 0)
		close(c->passed);
	free(c->buf);
	ulpd_conns[i] = ulpd_conns[--ulpd_nr_conns];
}

bool ulpd_conn_full(void)
{
	/* the other half is room for replies: one is never cut for want of it */
	return ulpd_nr_conns >= ULPD_CONNS_MAX / 2;
}

void ulpd_conn_accept(int lfd)
{
	/* one per wake-up: the listening socket may be systemd's, and blocking */
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (fd < 0)
		return;
	if (ulpd_conn_full() || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return;
	}
	ulpd_conns[ulpd_nr_conns++] = (struct ulpd_conn){
		.fd = fd,
		.passed = -1,
		.cred = cred,
		.deadline_us = ulp_now_us() + ULPD_READ_TIMEOUT_US,
	};
}

/* The request is all there (or all ulpd will wait for): answer it. */
static void ulpd_conn_handle(size_t i)
{
	struct ulpd_conn c = ulpd_conns[i];
	struct json_object *req = NULL, *reply;

	/* the connection is the handler's or the reply's from here on */
	ulpd_conns[i] = ulpd_conns[--ulpd_nr_conns];
	if (c.len)
		req = json_tokener_parse(c.buf);
	free(c.buf);
	/* the file the client sent; only ulpd sets this key */
	if (req && json_object_is_type(req, json_type_object)) {
		json_object_object_del(req, "_fd");
		if (c.passed >= 0)
			json_object_object_add(req, "_fd", json_object_new_int(c.passed));
	}
	if (!req || !json_object_is_type(req, json_type_object)) {
		reply = json_object_new_object();
		json_object_object_add(reply, "ok", json_object_new_boolean(0));
		json_object_object_add(
			reply, "error",
			json_object_new_string("malformed request: expected one JSON object"));
		json_object_object_add(reply, "errno", json_object_new_int(EINVAL));
	} else {
		reply = ulpd_handle_request(req, c.cred.uid, c.fd);
	}
	json_object_put(req);
	if (c.passed >= 0)
		close(c.passed);
	if (reply)
		ulpd_send_reply(c.fd, reply);
}

/* What the client sent; the request is handled at its newline, its end, or its limit. */
static void ulpd_conn_read(size_t i)
{
	struct ulpd_conn *c = &ulpd_conns[i];

	for (;;) {
		union {
			char buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = ctl.buf,
				      .msg_controllen = sizeof(ctl.buf) };
		ssize_t n;

		if (c->len + 1 >= c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 4096;
			char *nb = cap <= ULPD_REQUEST_MAX ? realloc(c->buf, cap) : NULL;

			if (!nb)
				break;
			c->buf = nb;
			c->cap = cap;
		}
		iov = (struct iovec){ .iov_base = c->buf + c->len, .iov_len = c->cap - c->len - 1 };
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		for (struct cmsghdr *m = CMSG_FIRSTHDR(&msg); n > 0 && m;
		     m = CMSG_NXTHDR(&msg, m)) {
			size_t nfd = (m->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (m->cmsg_level != SOL_SOCKET || m->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t k = 0; k < nfd; k++) {
				int got;

				memcpy(&got, CMSG_DATA(m) + k * sizeof(int), sizeof(int));
				/* one file per request: any other is closed */
				if (c->passed < 0)
					c->passed = got;
				else
					close(got);
			}
		}
		if (n <= 0)
			break;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		if (memchr(c->buf + c->len - n, '\n', (size_t)n))
			break;
	}
	ulpd_conn_handle(i);
}

/* Send what is left of a reply; false once the connection is done with. */
static bool ulpd_conn_write(struct ulpd_conn *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		c->off += (size_t)n;
	}
	return false;
}

void ulpd_send_reply(int fd, struct json_object *reply)
{
	const char *out = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(out);
	struct ulpd_conn c = { .fd = fd, .writing = true, .passed = -1, .len = len + 1 };

	c.buf = malloc(len + 1);
	if (c.buf) {
		memcpy(c.buf, out, len);
		c.buf[len] = '\n';
	}
	json_object_put(reply);
	/* the rest waits in the loop: the client reads at its pace, up to a limit */
	if (c.buf && ulpd_conn_write(&c) && ulpd_nr_conns < ULPD_CONNS_MAX) {
		c.deadline_us = ulp_now_us() + ULPD_WRITE_TIMEOUT_US;
		ulpd_conns[ulpd_nr_conns++] = c;
		return;
	}
	free(c.buf);
	close(fd);
}

size_t ulpd_conn_pollfds(struct pollfd *pfd, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ulpd_nr_conns && n < max; i++)
		pfd[n++] = (struct pollfd){ .fd = ulpd_conns[i].fd,
					    .events = ulpd_conns[i].writing ? POLLOUT : POLLIN };
	return n;
}

void ulpd_conn_ready(int fd)
{
	for (size_t i = 0; i < ulpd_nr_conns; i++) {
		if (ulpd_conns[i].fd != fd)
			continue;
		if (!ulpd_conns[i].writing)
			ulpd_conn_read(i);
		else if (!ulpd_conn_write(&ulpd_conns[i]))
			ulpd_conn_drop(i);
		return;
	}
}

int ulpd_conn_expire(void)
{
	uint64_t now = ulp_now_us(), next = UINT64_MAX;

	for (size_t i = 0; i < ulpd_nr_conns;) {
		struct ulpd_conn *c = &ulpd_conns[i];

		if (c->deadline_us > now) {
			if (c->deadline_us < next)
				next = c->deadline_us;
			i++;
			continue;
		}
		/* too slow: a reply not read is dropped; a request is taken as it came */
		if (c->writing)
			ulpd_conn_drop(i);
		else
			ulpd_conn_handle(i);
	}
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now + 999) / 1000);
}

void ulpd_conn_close_all(void)
{
	for (size_t i = 0; i < ulpd_nr_conns; i++) {
		close(ulpd_conns[i].fd);
		if (ulpd_conns[i].passed >= 0)
			close(ulpd_conns[i].passed);
	}
}

void ulpd_conn_flush(int timeout_ms)
{
	uint64_t end = ulp_now_us() + (uint64_t)timeout_ms * 1000u;

	/* requests not read whole are not started now: ulpd is stopping */
	for (size_t i = 0; i < ulpd_nr_conns;) {
		if (ulpd_conns[i].writing)
			i++;
		else
			ulpd_conn_drop(i);
	}
	while (ulpd_nr_conns && ulp_now_us() < end) {
		struct pollfd pfd[ULPD_CONNS_MAX];
		size_t n = ulpd_conn_pollfds(pfd, ULPD_CONNS_MAX);

		if (poll(pfd, n, 100) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < n; i++)
			if (pfd[i].revents)
				ulpd_conn_ready(pfd[i].fd);
	}
	while (ulpd_nr_conns)
		ulpd_conn_drop(0);
}
