/* SPDX-License-Identifier: MIT */
/* ulpd's messages: structured journal entries under systemd, standard error otherwise. */
#define SD_JOURNAL_SUPPRESS_LOCATION /* the code location would always be this file */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "engine.h"
#include "journal.h"

static bool ulpd_journal;
static char ulpd_status_socket[256];

/*
 * systemd.exec(5): $JOURNAL_STREAM is "DEVICE:INODE" of the stream it
 * connected standard output/error to.  Comparing it with what standard
 * error is now tells a stream of our own (a redirection, a pipe to a
 * test) from the journal's; sd_booted() is not asked, since what counts is
 * where standard error goes, not how the machine was started.
 */
static bool ulpd_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* systemd takes status only from the service's main process, not its forked workers */
static pid_t ulpd_main_pid;

void ulpd_log_init(void)
{
	ulpd_main_pid = getpid();
	ulpd_journal = ulpd_stderr_is_journal();
	ulp_target_log_hook = ulpd_log_event_line;
	ulp_target_warning_hook = ulpd_log_target_warning;
}

#define ULPD_MAX_FIELDS 9

struct ulpd_entry {
	struct iovec iov[ULPD_MAX_FIELDS];
	int n;
};

static void ulpd_entry_add(struct ulpd_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ulpd_entry_add(struct ulpd_entry *e, const char *fmt, ...)
{
	char *field;
	va_list ap;
	int len;

	if (e->n == ULPD_MAX_FIELDS)
		return;
	va_start(ap, fmt);
	len = vasprintf(&field, fmt, ap);
	va_end(ap);
	if (len < 0)
		return; /* out of memory: the entry goes without that field */
	e->iov[e->n++] = (struct iovec){ .iov_base = field, .iov_len = (size_t)len };
}

/* Send (the journal is best effort: ulpd never waits for it or fails on it) and free. */
static int ulpd_entry_send(struct ulpd_entry *e)
{
	int ret = sd_journal_sendv(e->iov, e->n);

	for (int i = 0; i < e->n; i++)
		free(e->iov[i].iov_base);
	e->n = 0;
	return ret;
}

static void ulpd_entry_common(struct ulpd_entry *e, int priority, const char *event, pid_t pid,
			      const char *patch, const char *msg)
{
	ulpd_entry_add(e, "MESSAGE=%s", msg);
	ulpd_entry_add(e, "PRIORITY=%d", priority);
	/* as journald names a stream's lines, so `journalctl -t ulpd` finds both */
	ulpd_entry_add(e, "SYSLOG_IDENTIFIER=ulpd");
	ulpd_entry_add(e, "ULP_EVENT=%s", event);
	if (pid > 0)
		ulpd_entry_add(e, "ULP_PID=%d", (int)pid);
	if (patch && patch[0])
		ulpd_entry_add(e, "ULP_PATCH=%s", patch);
}

void ulpd_log(int priority, const char *event, pid_t pid, const char *patch, const char *fmt, ...)
{
	struct ulpd_entry e = { .n = 0 };
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ulpd_journal) {
		ulpd_entry_common(&e, priority, event, pid, patch, msg);
		if (ulpd_entry_send(&e) >= 0)
			return;
		/* journald is gone: the stream may still take it */
	}
	fprintf(stderr, "ulpd: %s\n", msg);
}

/* The text between the quotes after key ("patch '"), if key is in s. */
static bool ulpd_quoted_after(const char *s, const char *key, char *out, size_t len)
{
	const char *start = strstr(s, key), *end;

	if (!start)
		return false;
	start += strlen(key);
	end = strchr(start, '\'');
	if (!end || (size_t)(end - start) >= len)
		return false;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return true;
}

/*
 * The core's event log lines (libpatch's ulp_target_log() calls; the
 * kernel's livepatch wording), by what they start with once "ulp: " and
 * any "'PATCH': " are off, or, for match_anywhere, by what they contain.
 * The event names are an interface: docs/ulpd.8 lists them.
 */
static const struct {
	const char *text;
	bool match_anywhere;
	const char *event;
	int priority;
} ulpd_core_events[] = {
	{ "enabling patch ", false, "enable", LOG_NOTICE },
	{ "initializing ", false, "transition-init", LOG_INFO },
	{ "starting ", false, "transition-start", LOG_INFO },
	{ "completing ", false, "transition-complete", LOG_INFO },
	{ "reversing transition", false, "transition-reverse", LOG_NOTICE },
	{ "canceling patching transition", false, "transition-cancel", LOG_WARNING },
	{ "patching complete", false, "apply", LOG_NOTICE },
	{ "unpatching complete", false, "revert", LOG_NOTICE },
	{ "a thread stays inside its slots", false, "slots-kept", LOG_WARNING },
	{ "failed to enable patch ", false, "enable-failed", LOG_ERR },
	{ "pre-patch callback failed", false, "pre-patch-failed", LOG_WARNING },
	{ "applying patch ", false, "object-coming", LOG_INFO },
	{ "reverting patch ", false, "object-going", LOG_INFO },
	{ "failed to apply patch ", false, "object-failed", LOG_ERR },
	{ "refusing to load object", true, "refused", LOG_WARNING },
	{ "is not compatible with", true, "incompatible", LOG_WARNING },
	{ "forcing remaining threads", false, "force", LOG_WARNING },
	{ "code changes stop every thread", false, "stop-all", LOG_NOTICE },
	{ "objects loaded later are not patched", false, "no-load-hook", LOG_WARNING },
};

#define ULPD_NR_CORE_EVENTS (sizeof(ulpd_core_events) / sizeof(ulpd_core_events[0]))

/* "demo: text" from a patch's ulp_log(): the patch's name, or false. */
static bool ulpd_patch_line(const char *line, char *patch, size_t len)
{
	static const char name_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					 "abcdefghijklmnopqrstuvwxyz0123456789_.-";
	size_t n = strspn(line, name_chars);

	if (!n || n >= len || line[n] != ':' || line[n + 1] != ' ')
		return false;
	memcpy(patch, line, n);
	patch[n] = '\0';
	return true;
}

/* The fields of a core line (rest: after "ulp: "); the patch named, if any. */
static void ulpd_core_line(const char *rest, char *patch, char *object, size_t len,
			   const char **event, int *priority, const char **direction)
{
	const char *dir;

	if (rest[0] == '\'' && ulpd_quoted_after(rest, "'", patch, len)) {
		rest += strlen(patch) + 2; /* "'demo'" */
		if (strncmp(rest, ": ", 2) == 0)
			rest += 2;
	} else {
		ulpd_quoted_after(rest, "patch '", patch, len);
	}
	ulpd_quoted_after(rest, "object '", object, len);
	for (size_t i = 0; i < ULPD_NR_CORE_EVENTS; i++) {
		const char *text = ulpd_core_events[i].text;
		bool match = ulpd_core_events[i].match_anywhere
				     ? strstr(rest, text) != NULL
				     : strncmp(rest, text, strlen(text)) == 0;

		if (match) {
			*event = ulpd_core_events[i].event;
			*priority = ulpd_core_events[i].priority;
			break;
		}
	}
	if (strncmp(*event, "transition-", 11) != 0)
		return;
	/* reversing "from patching to unpatching": the direction it takes now */
	dir = strcmp(*event, "transition-reverse") == 0 ? strstr(rest, " to ") : rest;
	if (dir && strstr(dir, "unpatching"))
		*direction = "unpatching";
	else if (dir && strstr(dir, "patching"))
		*direction = "patching";
}

void ulpd_log_target_warning(const struct ulp_target *t, const char *msg)
{
	ulpd_log(LOG_WARNING, "save-failed", t->pid, NULL, "%s", msg);
}

void ulpd_log_event_line(const struct ulp_target *t, const char *line)
{
	char patch[256] = "", object[256] = "", msg[2048];
	const char *event = "log", *direction = NULL;
	struct ulpd_entry e = { .n = 0 };
	int priority = LOG_INFO;

	if (strncmp(line, "ulp: ", 5) == 0)
		ulpd_core_line(line + 5, patch, object, sizeof(patch), &event, &priority,
			       &direction);
	else if (ulpd_patch_line(line, patch, sizeof(patch)))
		event = "patch-log";
	/* a line naming no patch during a transition is about that transition's */
	if (!patch[0] && t->transition && t->transition->ap && t->transition->ap->info)
		snprintf(patch, sizeof(patch), "%s", t->transition->ap->info->name);

	snprintf(msg, sizeof(msg), "process %d: %s", (int)t->pid, line);
	if (strcmp(event, "patch-log") != 0)
		ulpd_status("last event: %s", msg);
	/* elsewhere than in the journal, the event log is `ulpctl log`'s alone */
	if (!ulpd_journal)
		return;
	ulpd_entry_common(&e, priority, event, t->pid, patch, msg);
	if (object[0])
		ulpd_entry_add(&e, "ULP_OBJECT=%s", object);
	if (direction)
		ulpd_entry_add(&e, "ULP_TRANSITION=%s", direction);
	if (ulpd_entry_send(&e) < 0)
		fprintf(stderr, "ulpd: %s\n", msg);
}

void ulpd_status_set_socket(const char *path)
{
	snprintf(ulpd_status_socket, sizeof(ulpd_status_socket), "%s", path);
}

void ulpd_status(const char *fmt, ...)
{
	char what[2048];
	va_list ap;

	if (!getenv("NOTIFY_SOCKET"))
		return; /* not started by systemd: nobody to tell */
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* one line: systemctl status shows STATUS= as is */
	for (char *c = what; *c; c++)
		if (*c == '\n')
			*c = ' ';
	if (getpid() == ulpd_main_pid)
		sd_notifyf(0, "STATUS=Serving %s; %s", ulpd_status_socket, what);
}
