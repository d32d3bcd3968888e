/* SPDX-License-Identifier: MIT */
/* Client connections, read and written without blocking ulpd's loop (conn.c). */
#ifndef ULPD_CONN_H
#define ULPD_CONN_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/* Connections being read or written at once (half of them being read, at most). */
#define ULPD_CONNS_MAX 256

/* Too many requests being read: leave new connections in the listen queue. */
bool ulpd_conn_full(void);
/* Take a connection waiting on the listening socket lfd (poll said one is there). */
void ulpd_conn_accept(int lfd);
/* The connections, to poll (pfd[i].events set); ulpd_conn_ready() for each with revents. */
size_t ulpd_conn_pollfds(struct pollfd *pfd, size_t max);
void ulpd_conn_ready(int fd);
/*
 * Handle the requests that took too long to come as they are, drop the
 * replies not read in time; ms until the next such deadline, -1 none.
 */
int ulpd_conn_expire(void);
/* In a forked worker: the connections are the parent's. */
void ulpd_conn_close_all(void);
/* At exit: give the replies being written up to timeout_ms, then close all. */
void ulpd_conn_flush(int timeout_ms);

#endif
