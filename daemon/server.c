/* SPDX-License-Identifier: MIT */
/* The control socket: one JSON request line in, one JSON reply out, per connection. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "conn.h"
#include "daemon.h"
#include "fleet.h"
#include "persist.h"
#include "recovery.h"
#include "store.h"
#include "journal.h"

static volatile sig_atomic_t ulpd_stop;
static int ulpd_listen_fd = -1;

void ulpd_close_parent_fds(void)
{
	if (ulpd_listen_fd >= 0)
		close(ulpd_listen_fd);
	ulpd_waiters_close_fds();
	ulpd_fleet_close_clients();
	ulpd_conn_close_all();
}

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

/* ulpd's own socket at path (no socket activation): the listening fd or -errno. */
static int ulpd_listen(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, probe, ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		ulpd_log(LOG_ERR, "socket-error", 0, NULL, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	ret = ulpd_mkdir_parent(path);
	if (ret < 0) {
		ulpd_log(LOG_ERR, "socket-error", 0, NULL, "cannot create the directory of %s: %s",
			 path, strerror(-ret));
		return ret;
	}
	/* A live ulpd already there must not be stolen from. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		ulpd_log(LOG_ERR, "socket-error", 0, NULL, "another ulpd is serving %s", path);
		close(probe);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		ulpd_log(LOG_ERR, "socket-error", 0, NULL, "cannot listen on %s: %s", path,
			 strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

/*
 * The socket systemd passes when it starts ulpd for a connection (socket
 * activation, ulpd.socket): *fd is it, or -1 when none was passed; -errno
 * when what was passed is not a socket ulpd can serve.  When the socket
 * path was asked for (--socket, $ULP_SOCKET), the passed socket must be
 * bound to it: serving another one would leave ulpctl talking to nobody.
 * Its path goes to bound (for messages).
 */
static int ulpd_listen_activated(const struct ulpd_config *cfg, int *fd, char *bound, size_t len)
{
	struct sockaddr_un addr = { 0 };
	socklen_t alen = sizeof(addr);
	int n, ret;

	*fd = -1;
	/* unset: a process ulpd might start must not take these for its own */
	n = sd_listen_fds(1);
	if (n < 0) {
		ulpd_log(LOG_ERR, "socket-error", 0, NULL,
			 "cannot read the sockets passed by systemd ($LISTEN_FDS): %s",
			 strerror(-n));
		return n;
	}
	if (n == 0)
		return 0;
	if (n > 1) {
		ulpd_log(
			LOG_ERR, "socket-error", 0, NULL,
			"systemd passed %d sockets; ulpd serves exactly one (one ListenStream= in ulpd.socket)",
			n);
		return -EINVAL;
	}
	ret = sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0);
	if (ret <= 0) {
		ulpd_log(LOG_ERR, "socket-error", 0, NULL,
			 "the socket passed by systemd is not a listening unix stream socket%s%s",
			 ret < 0 ? ": " : "", ret < 0 ? strerror(-ret) : "");
		return ret < 0 ? ret : -ENOTSOCK;
	}
	if (getsockname(SD_LISTEN_FDS_START, (struct sockaddr *)&addr, &alen) < 0 ||
	    alen <= offsetof(struct sockaddr_un, sun_path))
		addr.sun_path[0] = '\0';
	addr.sun_path[sizeof(addr.sun_path) - 1] = '\0';
	if (cfg->socket_path_given &&
	    sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, cfg->socket_path, 0) <= 0) {
		ulpd_log(
			LOG_ERR, "socket-error", 0, NULL,
			"the socket passed by systemd is %s, not %s as asked (--socket, $ULP_SOCKET)",
			addr.sun_path[0] ? addr.sun_path : "unnamed", cfg->socket_path);
		return -EINVAL;
	}
	/* systemd hands it over inheritable; ulpd starts nothing that should get it */
	fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	snprintf(bound, len, "%s", addr.sun_path[0] ? addr.sun_path : cfg->socket_path);
	*fd = SD_LISTEN_FDS_START;
	return 0;
}

/* Waiting clients, loader hooks and --exe workers polled at most, each. */
#define ULPD_MAX_WAITING 256

int ulpd_serve(const struct ulpd_config *cfg)
{
	struct sigaction sa = { .sa_handler = ulpd_on_signal };
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool activated;
	int lfd, ret;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = ulpd_listen_activated(cfg, &lfd, path, sizeof(path));
	activated = lfd >= 0;
	if (ret == 0 && !activated) {
		snprintf(path, sizeof(path), "%s", cfg->socket_path);
		ret = lfd = ulpd_listen(path);
	}
	if (ret < 0) {
		/* systemctl status shows why; the journal has the whole message */
		sd_notifyf(0, "STATUS=Cannot serve the control socket: %s\nERRNO=%d",
			   strerror(-ret), -ret);
		return 1;
	}
	ulpd_listen_fd = lfd;
	ulpd_status_set_socket(path);
	ulpd_log(LOG_INFO, "start", 0, NULL, "version %s, serving %s%s", ULP_VERSION, path,
		 activated ? " (socket passed by systemd)" : "");
	/* what an earlier ulpd of this socket left in processes: taken over before serving */
	ulpd_store_set_dir(cfg->state_dir);
	{
		char store[4200];

		snprintf(store, sizeof(store), "%s/patches", cfg->state_dir);
		ulp_recovery_set_owner(path, store);
	}
	ulpd_adopt_all();
	/* --persist rules of an earlier ulpd: their executables are watched again */
	ulpd_persist_init(cfg->state_dir);
	/* ready: connections are accepted from here on */
	sd_notifyf(0, "READY=1\nSTATUS=Serving %s; no event yet", path);
	while (!ulpd_stop) {
		struct pollfd pfd[2 + 3 * ULPD_MAX_WAITING + ULPD_CONNS_MAX];
		int fds[ULPD_MAX_WAITING], hooks[ULPD_MAX_WAITING], workers[ULPD_MAX_WAITING];
		int timeout = ulpd_tick(), conn_timeout = ulpd_conn_expire(), n;
		size_t nw = ulpd_waiting_fds(fds, ULPD_MAX_WAITING);
		size_t nh = ulpd_hook_fds(hooks, ULPD_MAX_WAITING);
		size_t nf = ulpd_fleet_fds(workers, ULPD_MAX_WAITING), nc;

		/* too many requests being read: new ones wait in the listen queue */
		pfd[0] = (struct pollfd){ .fd = ulpd_conn_full() ? -1 : lfd, .events = POLLIN };
		/* clients shut their side down after the request: only a hang-up counts */
		for (size_t i = 0; i < nw; i++)
			pfd[1 + i] = (struct pollfd){ .fd = fds[i], .events = 0 };
		for (size_t i = 0; i < nh; i++)
			pfd[1 + nw + i] = (struct pollfd){ .fd = hooks[i], .events = POLLIN };
		if (conn_timeout >= 0 && (timeout < 0 || conn_timeout < timeout))
			timeout = conn_timeout;
		if (timeout < 0 || timeout > 1000)
			timeout = 1000;
		pfd[1 + nw + nh] = (struct pollfd){ .fd = ulpd_persist_fd(), .events = POLLIN };
		for (size_t i = 0; i < nf; i++)
			pfd[2 + nw + nh + i] =
				(struct pollfd){ .fd = workers[i], .events = POLLIN };
		nc = ulpd_conn_pollfds(pfd + 2 + nw + nh + nf, ULPD_CONNS_MAX);
		n = poll(pfd, 2 + nw + nh + nf + nc, timeout);
		if (n <= 0)
			continue;
		/* a program being started is waiting in execve() for ulpd (--persist) */
		if (pfd[1 + nw + nh].revents & POLLIN)
			ulpd_persist_ready();
		/* a thread waits inside dlopen() or dlclose(): first */
		for (size_t i = 0; i < nh; i++)
			if (pfd[1 + nw + i].revents)
				ulpd_hook_ready(hooks[i]);
		/* a client that stopped waiting (Ctrl-C): the transition goes on */
		for (size_t i = 0; i < nw; i++)
			if (pfd[1 + i].revents & (POLLHUP | POLLERR))
				ulpd_client_gone(fds[i]);
		/* requests and replies that can go on; then new connections */
		for (size_t i = 0; i < nc; i++)
			if (pfd[2 + nw + nh + nf + i].revents)
				ulpd_conn_ready(pfd[2 + nw + nh + nf + i].fd);
		if (pfd[0].revents & POLLIN)
			ulpd_conn_accept(lfd);
		/*
		 * What workers of an --exe request did: those processes are
		 * ulpd's again.  Last, as it frees and makes targets (their
		 * descriptors' numbers are reused).
		 */
		for (size_t i = 0; i < nf; i++)
			if (pfd[2 + nw + nh + i].revents)
				ulpd_fleet_ready(workers[i]);
	}
	sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
	ulpd_fleet_shutdown();
	/* the replies just sent, and those a slow client is still reading */
	ulpd_conn_flush(2000);
	ulpd_log(LOG_INFO, "stop", 0, NULL, "stopping (serving %s)", path);
	close(lfd);
	/*
	 * systemd owns a passed socket: it keeps listening on it and starts
	 * ulpd again at the next connection, so its path must stay.
	 */
	if (!activated)
		unlink(path);
	ulpd_targets_free();
	return 0;
}
