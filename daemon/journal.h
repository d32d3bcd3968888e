/* SPDX-License-Identifier: MIT */
/*
 * Where ulpd's messages go, and what it tells systemd about itself.
 *
 * Under systemd (standard error connected to the journal, as
 * $JOURNAL_STREAM says) every message is a structured journal entry:
 * MESSAGE=, PRIORITY=, ULP_EVENT= (a short stable name), and ULP_PID=,
 * ULP_PATCH=, ULP_OBJECT=, ULP_TRANSITION= when they apply; the event log
 * of every process ulpd patches is copied there too.  Otherwise ulpd's own
 * messages go to standard error as "ulpd: MESSAGE" and the event log stays
 * with `ulpctl log` alone.  docs/ulpd.8 lists the fields and events.
 */
#ifndef ULPD_JOURNAL_H
#define ULPD_JOURNAL_H

#include <syslog.h>
#include <sys/types.h>

struct ulp_target;

/* Decide where messages go (call once, first) and hook the engine's event log. */
void ulpd_log_init(void);

/*
 * One message of ulpd's own: priority is syslog's (LOG_ERR...), event a
 * ULP_EVENT= name, pid 0 and patch NULL when they do not apply.
 */
void ulpd_log(int priority, const char *event, pid_t pid, const char *patch, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * The engine's hook (ulp_target_log_hook): one line of a process's event
 * log, sent to the journal with the fields read from its text, and made
 * the last event of ulpd's STATUS=.
 */
void ulpd_log_event_line(const struct ulp_target *t, const char *line);
/* The engine's warnings about a process (ulp_target_warning_hook). */
void ulpd_log_target_warning(const struct ulp_target *t, const char *msg);

/*
 * STATUS= for systemd (`systemctl status ulpd`): what ulpd serves and the
 * last thing that happened.  Does nothing when not started by systemd.
 */
void ulpd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The socket being served, for ulpd_status() lines. */
void ulpd_status_set_socket(const char *path);

#endif
