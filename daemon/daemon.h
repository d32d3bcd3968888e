/* SPDX-License-Identifier: MIT */
#ifndef ULPD_DAEMON_H
#define ULPD_DAEMON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ulp_target;

struct ulpd_config {
	const char *socket_path;
	/* by --socket or $ULP_SOCKET: a socket passed by systemd must be that one */
	bool socket_path_given;
	const char *state_dir;
};

/*
 * Serve the control socket until SIGTERM/SIGINT: the one systemd passes
 * (socket activation; left in place at exit), else one of its own at
 * cfg->socket_path (removed at exit).  Tells systemd when it is ready
 * (sd_notify READY=1).  Returns an exit status.
 */
int ulpd_serve(const struct ulpd_config *cfg);

/*
 * Handle one request from a client with credentials uid on connection fd;
 * returns the reply object, or NULL when the reply comes later (apply and
 * revert waiting for a transition): requests.c then owns fd and answers
 * through ulpd_send_reply().
 */
struct json_object *ulpd_handle_request(struct json_object *req, uid_t uid, int fd);

/*
 * Work due now: attempts at pending transitions, replies to clients whose
 * wait is over.  Returns how many ms until more work is due (-1: none).
 */
int ulpd_tick(void);

/* Connections of waiting clients, to poll for hang-ups (ulpd_client_gone). */
size_t ulpd_waiting_fds(int *fds, size_t max);
void ulpd_client_gone(int fd);
/* In a forked worker: the waiting clients' connections are the parent's. */
void ulpd_waiters_close_fds(void);
/*
 * In a forked worker: close what is the parent's to answer or close (the
 * control socket, clients' connections), so that no client waits on a
 * worker to see its reply end.
 */
void ulpd_close_parent_fds(void);

/* Loader-hook channels of the targets, to poll for events (ulpd_hook_ready). */
size_t ulpd_hook_fds(int *fds, size_t max);
void ulpd_hook_ready(int fd);

/* Send reply on fd, close fd, drop reply. */
void ulpd_send_reply(int fd, struct json_object *reply);

/* Forget every target and waiting client (at exit). */
void ulpd_targets_free(void);
/* Replies: {"ok":true,"message":...}; {"ok":false,"error":<last error>}. */
struct json_object *ulpd_reply_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct json_object *ulpd_reply_error(int err, const char *fallback);
/* The target ulpd keeps for pid, made (or adopted) if new. */
int ulpd_target_get(pid_t pid, struct ulp_target **out);
/* The same in a forked worker (fleet.c): nothing of the parent's bookkeeping. */
int ulpd_target_for_worker(pid_t pid, struct ulp_target **out);
/*
 * Forget what ulpd knew of pid and take it over again from its saved state
 * (rt_info, r_debug: where a worker that left it at rest found those; 0).
 */
void ulpd_target_readopt(pid_t pid, uint64_t rt_info, uint64_t r_debug);
/* Take over every process an earlier ulpd patched (their saved state). */
void ulpd_adopt_all(void);
/*
 * ulpd --can-adopt: could this ulpd take over every process the running
 * ulpd of cfg's socket patched?  One line per process it could not, and a
 * summary, on standard output; 0 or -EPROTO.
 */
int ulpd_can_adopt_all(const struct ulpd_config *cfg);

#endif
