/* SPDX-License-Identifier: MIT */
/*
 * Who may patch a process: the kernel's ptrace access rule (ptrace(2),
 * "Ptrace access mode checking", PTRACE_MODE_ATTACH_REALCREDS, then Yama)
 * restated over what userspace can see of the two processes.  ulpd traces
 * as root, so the kernel would let it in anywhere: it judges for its client
 * whether the client could have attached itself.  Pure: the caller reads
 * /proc (daemon/auth.c); the decision is unit-tested on its own.
 */
#ifndef ULP_PTRACE_ACCESS_H
#define ULP_PTRACE_ACCESS_H

#include <stdbool.h>
#include <sys/types.h>

/* The client, as SO_PEERCRED gives it (effective ids at connect()). */
struct ulp_ptrace_caller {
	pid_t pid; /* its thread group id; 0 if unknown */
	uid_t uid;
	gid_t gid;
};

/* The process to patch, as /proc/PID shows it. */
struct ulp_ptrace_target {
	pid_t pid; /* as asked for (may be a thread id) */
	pid_t tgid; /* Tgid: of /proc/PID/status */
	uid_t uid[3]; /* real, effective, saved set-user-ID (Uid:) */
	gid_t gid[3]; /* real, effective, saved set-group-ID (Gid:) */
	/*
	 * Owner of a file inside /proc/PID: the effective uid and gid while the
	 * process is dumpable, root:root (its user namespace's root) when not
	 * (proc_pid(5)).
	 */
	uid_t proc_uid;
	gid_t proc_gid;
	/* the caller is one of its ancestors (asked for by Yama scope 1 only) */
	bool descends_from_caller;
};

/* /proc/sys/kernel/yama/ptrace_scope; a kernel without Yama is scope 0. */
#define ULP_YAMA_CLASSIC 0 /* the uid/gid and dumpable rules only */
#define ULP_YAMA_RELATIONAL 1 /* and only descendants */
#define ULP_YAMA_ADMIN 2 /* CAP_SYS_PTRACE only */
#define ULP_YAMA_NO_ATTACH 3 /* nobody, not even root */

enum ulp_ptrace_verdict {
	ULP_PTRACE_ALLOWED,
	ULP_PTRACE_OTHER_UID, /* a real, effective or saved uid is not the caller's */
	ULP_PTRACE_OTHER_GID, /* a real, effective or saved gid is not the caller's */
	ULP_PTRACE_NOT_DUMPABLE,
	ULP_PTRACE_NOT_DESCENDANT, /* Yama scope 1 */
	ULP_PTRACE_ADMIN_ONLY, /* Yama scope 2 */
	ULP_PTRACE_NO_ATTACH, /* Yama scope 3 */
};

/*
 * Fill tgid, uid[] and gid[] of t from the text of /proc/PID/status.
 * 0, or -EINVAL if a line is missing or malformed.
 */
int ulp_ptrace_parse_status(const char *status, struct ulp_ptrace_target *t);

/*
 * The decision, in the kernel's order: the caller's own thread group is
 * always allowed; uid 0 too (ulp's stand-in for CAP_SYS_PTRACE, which
 * SO_PEERCRED does not carry; under Yama scope 3 the kernel then refuses
 * ulpd's own attach); anyone else needs its uid to be the target's real,
 * effective and saved uid, its gid the target's three gids, a dumpable
 * target, and Yama's consent.
 */
enum ulp_ptrace_verdict ulp_ptrace_judge(const struct ulp_ptrace_caller *c,
					 const struct ulp_ptrace_target *t, int yama_scope);

/*
 * Judge, and for a refusal return -EPERM with a message naming the
 * process, the user and the reason (user and group names looked up with
 * getpwuid_r/getgrgid_r where they exist).  0 when allowed.
 */
int ulp_ptrace_may_access(const struct ulp_ptrace_caller *c, const struct ulp_ptrace_target *t,
			  int yama_scope);

#endif
