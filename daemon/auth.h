/* SPDX-License-Identifier: MIT */
/*
 * Authorisation of a client's request by its SO_PEERCRED credentials: root
 * may patch any process, anyone else only the processes they could trace
 * with ptrace(2) themselves (libpatch/ptrace_access.h has the rule).
 */
#ifndef ULPD_AUTH_H
#define ULPD_AUTH_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * The credentials of the client on connection fd, whose uid server.c
 * already read.  Should SO_PEERCRED fail there, the gid and pid are
 * unknown and no gid matches: the client is then judged by its uid alone,
 * refused for every process unless it is root.
 */
void ulpd_peer_creds(int fd, uid_t uid, struct ucred *out);

/*
 * May the client patch process pid?  0; -ESRCH "no such process: PID";
 * -EPERM with a message naming the process, the user and the reason.
 * Every request naming a process asks this first.
 */
int ulpd_may_patch(pid_t pid, const struct ucred *peer);

/* The same question, without a message (status lists only these). */
bool ulpd_may_see(pid_t pid, const struct ucred *peer);

#endif
