/* SPDX-License-Identifier: MIT */
/* Every running process of one executable at once (fleet.c). */
#ifndef ULPD_FLEET_H
#define ULPD_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct json_object;

struct ulpd_fleet_op {
	bool apply; /* else revert */
	bool persist; /* apply --persist: said in the reply */
	const char *patch; /* apply: the stored patch file */
	const char *display; /* apply: its name as the client gave it */
	const char *name; /* the patch's name */
	int budget_ms; /* how long each process's first attempt may take (0: default) */
};

/*
 * Apply or revert in every process of exe the client may patch, in the
 * background: NULL, and the reply goes to fd (which fleet.c then owns)
 * once every process is dealt with, listing each with its result
 * (patched / reverted / pending / already / skipped and why / failed and
 * why); or an error reply now.  Requests run one after the other, each
 * finding its processes when it starts.
 */
struct json_object *ulpd_fleet(const char *exe, const struct ucred *peer,
			       const struct ulpd_fleet_op *op, int fd);

/* How many processes of exe the client may patch (ulpd_fleet would list). */
int ulpd_fleet_count(const char *exe, const struct ucred *peer, size_t *nr);

/* The running request's workers, to poll for input (ulpd_fleet_ready). */
size_t ulpd_fleet_fds(int *fds, size_t max);
void ulpd_fleet_ready(int fd);

/*
 * Is pid one the running request has yet to answer for?  Then a worker
 * may be changing it: nothing else may touch it, and
 * ulpd_fleet_busy_error() says so (-EBUSY).
 */
bool ulpd_fleet_busy(pid_t pid);
int ulpd_fleet_busy_error(pid_t pid);

/* Does a running or waiting request use the stored patch at path? */
bool ulpd_fleet_uses(const char *path);

/*
 * The running and waiting requests the client may see (its own; root: all),
 * for status: [{"exe", "action": "apply"|"revert", "patch", "state":
 * "running"|"waiting", and while running "done" and "total" processes}].
 */
struct json_object *ulpd_fleet_status(const struct ucred *peer);

/* In a forked worker: the clients' connections are the parent's to close. */
void ulpd_fleet_close_clients(void);

/* At exit: finish the running request, refuse the waiting ones. */
void ulpd_fleet_shutdown(void);

#endif
