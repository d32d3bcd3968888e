/* SPDX-License-Identifier: MIT */
/*
 * Authorisation of requests: what /proc shows of the target, Yama's
 * ptrace_scope, and the rule of libpatch/ptrace_access.c over them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "error.h"
#include "procfs.h"
#include "ptrace_access.h"

#define ULPD_YAMA_SCOPE "/proc/sys/kernel/yama/ptrace_scope"
/* deeper than any real process tree; ends a walk through a loop of reused pids */
#define ULPD_MAX_ANCESTORS 4096

void ulpd_peer_creds(int fd, uid_t uid, struct ucred *out)
{
	socklen_t len = sizeof(*out);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, out, &len) == 0 && len == sizeof(*out) &&
	    out->uid == uid)
		return;
	*out = (struct ucred){ .pid = 0, .uid = uid, .gid = (gid_t)-1 };
}

/*
 * Read per request: the scope may be raised at any time.  No Yama: the
 * classic rule.  Unreadable otherwise: the strictest, as nothing can be
 * assumed about it.
 */
static int ulpd_yama_scope(void)
{
	FILE *f = fopen(ULPD_YAMA_SCOPE, "re");
	int scope = ULP_YAMA_NO_ATTACH;

	if (!f)
		return errno == ENOENT ? ULP_YAMA_CLASSIC : ULP_YAMA_NO_ATTACH;
	if (fscanf(f, "%d", &scope) != 1 || scope < 0)
		scope = ULP_YAMA_NO_ATTACH;
	fclose(f);
	return scope;
}

/* Is ancestor among the parents of pid, up to init?  (Yama's task_is_descendant) */
static bool ulpd_descends_from(pid_t pid, pid_t ancestor)
{
	if (ancestor <= 0)
		return false;
	for (int i = 0; i < ULPD_MAX_ANCESTORS && pid > 0; i++) {
		pid = ulp_proc_parent(pid);
		if (pid == ancestor)
			return true;
	}
	return false;
}

/*
 * The target's ids from /proc/PID/status and the owner of that file
 * (root when it is not dumpable), both through one open file: the same
 * process even if the pid is reused meanwhile.
 */
static int ulpd_read_target(pid_t pid, struct ulp_ptrace_target *t)
{
	char path[64], buf[8192];
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ESRCH)
			return ulp_errorf(-ESRCH, "no such process: %d", pid);
		return ulp_errorf(-errno, "cannot open %s: %s", path, strerror(errno));
	}
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	/* a task reaped between open and read reads as empty */
	if (len == 0 || ret == -ESRCH)
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	if (ret < 0)
		return ulp_errorf(ret, "cannot stat %s: %s", path, strerror(-ret));
	t->pid = pid;
	t->proc_uid = st.st_uid;
	t->proc_gid = st.st_gid;
	return ulp_ptrace_parse_status(buf, t);
}

/* Everything the rule looks at: 0 or -errno with a message. */
static int ulpd_gather(pid_t pid, const struct ucred *peer, struct ulp_ptrace_caller *c,
		       struct ulp_ptrace_target *t, int *scope)
{
	int ret;

	*c = (struct ulp_ptrace_caller){ .pid = peer->pid, .uid = peer->uid, .gid = peer->gid };
	*t = (struct ulp_ptrace_target){ .pid = pid };
	if (pid <= 0)
		return ulp_errorf(-ESRCH, "no such process: %d", pid);
	ret = ulpd_read_target(pid, t);
	if (ret < 0)
		return ret;
	*scope = ulpd_yama_scope();
	/* the walk up the process tree only where Yama asks for it */
	if (*scope == ULP_YAMA_RELATIONAL)
		t->descends_from_caller = ulpd_descends_from(t->tgid, peer->pid);
	return 0;
}

int ulpd_may_patch(pid_t pid, const struct ucred *peer)
{
	struct ulp_ptrace_caller c;
	struct ulp_ptrace_target t;
	int scope, ret;

	/*
	 * Root may patch anything; whether the process exists, the request
	 * finds out itself with the same "no such process" as ever.
	 */
	if (peer->uid == 0)
		return 0;
	ret = ulpd_gather(pid, peer, &c, &t, &scope);
	if (ret < 0)
		return ret;
	return ulp_ptrace_may_access(&c, &t, scope);
}

bool ulpd_may_see(pid_t pid, const struct ucred *peer)
{
	struct ulp_ptrace_caller c;
	struct ulp_ptrace_target t;
	int scope;

	if (peer->uid == 0)
		return true;
	if (ulpd_gather(pid, peer, &c, &t, &scope) < 0) {
		ulp_error_clear(); /* not this request's error */
		return false;
	}
	return ulp_ptrace_judge(&c, &t, scope) == ULP_PTRACE_ALLOWED;
}
