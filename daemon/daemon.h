/* SPDX-License-Identifier: MIT */
#ifndef ULPD_DAEMON_H
#define ULPD_DAEMON_H

#include <json-c/json.h>
#include <sys/types.h>

struct ulpd_config {
	const char *socket_path;
	const char *state_dir;
};

/* Serve the control socket until SIGTERM/SIGINT.  Returns an exit status. */
int ulpd_serve(const struct ulpd_config *cfg);

/*
 * Handle one request from a client with credentials uid/pid; returns the
 * reply object (never NULL).
 */
struct json_object *ulpd_handle_request(struct json_object *req, uid_t uid);

/* Forget every target (at exit). */
void ulpd_targets_free(void);

#endif
