/* SPDX-License-Identifier: MIT */
/* The kernel's ptrace access rule over what /proc shows (ptrace_access.h). */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ptrace_access.h"

/* The three numbers after "Key:" in "Key:\tR\tE\tS\tFS"; 0 or -EINVAL. */
static int ulp_parse_ids(const char *s, unsigned out[3])
{
	for (int i = 0; i < 3; i++) {
		unsigned long v;
		char *end;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || v > UINT32_MAX)
			return -EINVAL;
		out[i] = (unsigned)v;
		s = end;
	}
	return 0;
}

/*
 * The value after "key" at the start of a line, the first such line only.
 * The kernel escapes newlines in the Name: line (the one line a process
 * chooses), so no process can forge a line of its own.
 */
static const char *ulp_status_field(const char *status, const char *key)
{
	size_t len = strlen(key);

	for (const char *line = status; line && *line;) {
		const char *nl = strchr(line, '\n');

		if (strncmp(line, key, len) == 0)
			return line + len;
		line = nl ? nl + 1 : NULL;
	}
	return NULL;
}

int ulp_ptrace_parse_status(const char *status, struct ulp_ptrace_target *t)
{
	const char *tgid = ulp_status_field(status, "Tgid:");
	const char *uid = ulp_status_field(status, "Uid:");
	const char *gid = ulp_status_field(status, "Gid:");
	unsigned u[3], g[3];
	char *end;
	long v;

	if (!tgid || !uid || !gid)
		return ulp_errorf(-EINVAL, "malformed /proc/%d/status: no Tgid:, Uid: or Gid: line",
				  t->pid);
	errno = 0;
	v = strtol(tgid, &end, 10);
	if (errno || end == tgid || v <= 0 || v > INT_MAX || ulp_parse_ids(uid, u) < 0 ||
	    ulp_parse_ids(gid, g) < 0)
		return ulp_errorf(
			-EINVAL, "malformed /proc/%d/status: bad Tgid:, Uid: or Gid: line", t->pid);
	t->tgid = (pid_t)v;
	for (int i = 0; i < 3; i++) {
		t->uid[i] = (uid_t)u[i];
		t->gid[i] = (gid_t)g[i];
	}
	return 0;
}

enum ulp_ptrace_verdict ulp_ptrace_judge(const struct ulp_ptrace_caller *c,
					 const struct ulp_ptrace_target *t, int yama_scope)
{
	bool dumpable;

	/* the kernel's same_thread_group(): a process may always look at itself */
	if (c->pid > 0 && c->pid == t->tgid)
		return ULP_PTRACE_ALLOWED;
	if (c->uid == 0)
		return ULP_PTRACE_ALLOWED;
	for (int i = 0; i < 3; i++)
		if (t->uid[i] != c->uid)
			return ULP_PTRACE_OTHER_UID;
	for (int i = 0; i < 3; i++)
		if (t->gid[i] != c->gid)
			return ULP_PTRACE_OTHER_GID;
	/*
	 * A dumpable process's /proc files belong to its effective ids, a
	 * non-dumpable one's to root.  Here those ids are the caller's, not 0,
	 * so the two cannot be mistaken for each other; only in a user
	 * namespace whose root is the caller's very uid are they the same,
	 * and there the caller holds CAP_SYS_PTRACE over the target's
	 * namespace, which the kernel's dumpable check accepts as well.
	 */
	dumpable = t->proc_uid == t->uid[1] && t->proc_gid == t->gid[1];
	if (!dumpable)
		return ULP_PTRACE_NOT_DUMPABLE;
	switch (yama_scope) {
	case ULP_YAMA_CLASSIC:
		return ULP_PTRACE_ALLOWED;
	case ULP_YAMA_RELATIONAL:
		/* PR_SET_PTRACER exceptions are invisible from userspace: not honoured */
		return t->descends_from_caller ? ULP_PTRACE_ALLOWED : ULP_PTRACE_NOT_DESCENDANT;
	case ULP_YAMA_ADMIN:
		return ULP_PTRACE_ADMIN_ONLY;
	default:
		/* 3, or a value Yama does not know yet: the strictest */
		return ULP_PTRACE_NO_ATTACH;
	}
}

/* "uid N (name)", or "uid N" when no user has that uid. */
static const char *ulp_uid_text(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "uid %u (%s)", (unsigned)uid, res->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

static const char *ulp_gid_text(gid_t gid, char *buf, size_t len)
{
	struct group gr, *res = NULL;
	char tmp[4096]; /* a group entry carries its member list */

	if (getgrgid_r(gid, &gr, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "gid %u (%s)", (unsigned)gid, res->gr_name);
	else
		snprintf(buf, len, "gid %u", (unsigned)gid);
	return buf;
}

int ulp_ptrace_may_access(const struct ulp_ptrace_caller *c, const struct ulp_ptrace_target *t,
			  int yama_scope)
{
	enum ulp_ptrace_verdict v = ulp_ptrace_judge(c, t, yama_scope);
	char who[300], theirs[300], group[300];
	pid_t pid = t->pid;

	if (v == ULP_PTRACE_ALLOWED)
		return 0;
	ulp_uid_text(c->uid, who, sizeof(who));
	switch (v) {
	case ULP_PTRACE_OTHER_UID:
		if (t->uid[0] == t->uid[1] && t->uid[1] == t->uid[2])
			return ulp_errorf(
				-EPERM, "permission denied: process %d belongs to %s, not to %s",
				pid, ulp_uid_text(t->uid[0], theirs, sizeof(theirs)), who);
		return ulp_errorf(
			-EPERM,
			"permission denied: process %d runs with real/effective/saved uids %u/%u/%u (set-user-ID or changed credentials), not all %s",
			pid, (unsigned)t->uid[0], (unsigned)t->uid[1], (unsigned)t->uid[2], who);
	case ULP_PTRACE_OTHER_GID:
		ulp_gid_text(c->gid, group, sizeof(group));
		if (t->gid[0] == t->gid[1] && t->gid[1] == t->gid[2])
			return ulp_errorf(
				-EPERM,
				"permission denied: process %d runs with %s, not with %s of %s",
				pid, ulp_gid_text(t->gid[0], theirs, sizeof(theirs)), group, who);
		return ulp_errorf(
			-EPERM,
			"permission denied: process %d runs with real/effective/saved gids %u/%u/%u (set-group-ID or changed credentials), not all %s of %s",
			pid, (unsigned)t->gid[0], (unsigned)t->gid[1], (unsigned)t->gid[2], group,
			who);
	case ULP_PTRACE_NOT_DUMPABLE:
		return ulp_errorf(
			-EPERM,
			"permission denied: process %d is not dumpable (it called prctl(PR_SET_DUMPABLE, 0) or changed its credentials); only root may patch it, not %s",
			pid, who);
	case ULP_PTRACE_NOT_DESCENDANT:
		return ulp_errorf(
			-EPERM,
			"permission denied: process %d is not a descendant of the caller (process %d) and kernel.yama.ptrace_scope is 1; only root may patch it, not %s",
			pid, c->pid, who);
	case ULP_PTRACE_ADMIN_ONLY:
		return ulp_errorf(
			-EPERM,
			"permission denied: kernel.yama.ptrace_scope is 2: only root may patch process %d, not %s",
			pid, who);
	default:
		return ulp_errorf(
			-EPERM,
			"permission denied: kernel.yama.ptrace_scope is %d: no process may be traced, %s may not patch process %d",
			yama_scope, who, pid);
	}
}
