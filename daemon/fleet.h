/* SPDX-License-Identifier: MIT */
/* Every running process of one executable at once (fleet.c). */
#ifndef ULPD_FLEET_H
#define ULPD_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct json_object;

struct ulpd_fleet_op {
	bool apply; /* else revert */
	const char *patch; /* apply: the stored patch file */
	const char *display; /* apply: its name as the client gave it */
	const char *name; /* revert: the patch's name */
	int budget_ms; /* how long each process's first attempt may take (0: default) */
};

/*
 * Apply or revert in every process of exe the client may patch; the reply
 * lists each with its result (patched / reverted / pending / already /
 * skipped and why / failed and why).
 */
struct json_object *ulpd_fleet(const char *exe, const struct ucred *peer,
			       const struct ulpd_fleet_op *op);

/* How many processes of exe the client may patch (ulpd_fleet would list). */
int ulpd_fleet_count(const char *exe, const struct ucred *peer, size_t *nr);

#endif
