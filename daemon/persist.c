/* SPDX-License-Identifier: MIT */
/*
 * apply --exe PATH --persist: processes of that executable started later
 * are patched before their main() runs (persist.h).
 *
 * fanotify reports each exec of the file as a permission event, with the
 * exec'ing thread blocked in execve(): ulpd seizes it (PTRACE_O_TRACEEXEC)
 * before allowing, so it stops right after the exec, before any
 * instruction of the new program.  ulpd makes the executable's entry
 * point a `jmp .` and lets it go: the dynamic loader maps and initialises
 * the libraries (libc ready), then the thread spins at the entry.  There
 * ulpd applies the patch as to any process (the spinning thread is a safe
 * one to borrow), puts the entry's bytes back, and the program starts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>

#include <json-c/json.h>

#include "daemon.h"
#include "engine.h"
#include "error.h"
#include "journal.h"
#include "persist.h"
#include "poke.h"
#include "recovery.h"
#include "process.h"
#include "procfs.h"

#define ULPD_PERSIST_WAIT_MS 5000

struct ulpd_rule {
	char exe[PATH_MAX];
	char patch[PATH_MAX]; /* the stored copy */
	char display[256];
	char name[256];
};

static struct ulpd_rule *ulpd_rules;
static size_t ulpd_nr_rules;
static int ulpd_fan = -1;
static char ulpd_rules_file[PATH_MAX];
/*
 * STATE_DIR/persist-PID: a process ulpd holds spinning at its entry, with
 * the entry's bytes; a ulpd that died there gives them back at its next
 * start, or the process would spin forever.
 */
static char ulpd_state_dir[PATH_MAX];

static void ulpd_pending_path(pid_t pid, char *out, size_t len)
{
	snprintf(out, len, "%s/persist-%d", ulpd_state_dir, pid);
}

static void ulpd_pending_write(pid_t pid, uint64_t entry, const uint8_t orig[2])
{
	char path[PATH_MAX + 32];
	FILE *f;

	ulpd_pending_path(pid, path, sizeof(path));
	f = fopen(path, "we");
	if (!f)
		return;
	fprintf(f, "%llu %llu %u %u\n", ulp_proc_start_time(pid), (unsigned long long)entry,
		orig[0], orig[1]);
	fclose(f);
}

static void ulpd_pending_clear(pid_t pid)
{
	char path[PATH_MAX + 32];

	ulpd_pending_path(pid, path, sizeof(path));
	unlink(path);
}

bool ulpd_persist_uses(const char *path)
{
	for (size_t i = 0; i < ulpd_nr_rules; i++)
		if (!strcmp(ulpd_rules[i].patch, path))
			return true;
	return false;
}

int ulpd_persist_fd(void)
{
	return ulpd_fan;
}

static void ulpd_rules_save(void)
{
	struct json_object *a = json_object_new_array();
	char tmp[PATH_MAX + 8];

	for (size_t i = 0; i < ulpd_nr_rules; i++) {
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "exe", json_object_new_string(ulpd_rules[i].exe));
		json_object_object_add(r, "patch", json_object_new_string(ulpd_rules[i].patch));
		json_object_object_add(r, "display", json_object_new_string(ulpd_rules[i].display));
		json_object_object_add(r, "name", json_object_new_string(ulpd_rules[i].name));
		json_object_array_add(a, r);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", ulpd_rules_file);
	if (json_object_to_file_ext(tmp, a, JSON_C_TO_STRING_PLAIN) == 0)
		rename(tmp, ulpd_rules_file);
	json_object_put(a);
}

static int ulpd_fan_open(void)
{
	if (ulpd_fan >= 0)
		return 0;
	ulpd_fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID,
				 O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	if (ulpd_fan < 0)
		return ulp_errorf(-errno, "cannot watch executions (fanotify): %s",
				  strerror(errno));
	return 0;
}

/* Mark exe: every exec of it blocks until ulpd answers. */
static int ulpd_fan_mark(const char *exe)
{
	int ret = ulpd_fan_open();

	if (ret == 0 &&
	    fanotify_mark(ulpd_fan, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, AT_FDCWD, exe) < 0)
		ret = ulp_errorf(-errno, "cannot watch executions of %s: %s", exe, strerror(errno));
	return ret;
}

int ulpd_persist_add(const char *exe, const char *patch, const char *display, const char *name)
{
	struct ulpd_rule *n;
	int ret;

	for (size_t i = 0; i < ulpd_nr_rules; i++)
		if (!strcmp(ulpd_rules[i].exe, exe) && !strcmp(ulpd_rules[i].name, name))
			return 0;
	ret = ulpd_fan_mark(exe);
	if (ret < 0)
		return ret;
	n = realloc(ulpd_rules, (ulpd_nr_rules + 1) * sizeof(*n));
	if (!n)
		return ulp_errorf(-ENOMEM, "out of memory");
	ulpd_rules = n;
	memset(&n[ulpd_nr_rules], 0, sizeof(*n));
	snprintf(n[ulpd_nr_rules].exe, sizeof(n->exe), "%s", exe);
	snprintf(n[ulpd_nr_rules].patch, sizeof(n->patch), "%s", patch);
	snprintf(n[ulpd_nr_rules].display, sizeof(n->display), "%s", display);
	snprintf(n[ulpd_nr_rules].name, sizeof(n->name), "%s", name);
	ulpd_nr_rules++;
	ulpd_rules_save();
	return 0;
}

size_t ulpd_persist_remove(const char *exe, const char *name)
{
	size_t j = 0, removed = 0;
	bool still = false;

	for (size_t i = 0; i < ulpd_nr_rules; i++) {
		if (!strcmp(ulpd_rules[i].exe, exe) && !strcmp(ulpd_rules[i].name, name)) {
			removed++;
			continue;
		}
		still |= !strcmp(ulpd_rules[i].exe, exe);
		ulpd_rules[j++] = ulpd_rules[i];
	}
	ulpd_nr_rules = j;
	if (removed && !still && ulpd_fan >= 0)
		fanotify_mark(ulpd_fan, FAN_MARK_REMOVE, FAN_OPEN_EXEC_PERM, AT_FDCWD, exe);
	if (removed)
		ulpd_rules_save();
	return removed;
}

static int ulpd_persist_release(pid_t pid, uint64_t entry, const uint8_t orig[2]);

/* pid, spinning at its entry, runs exe: the rules' patches, before main(). */
static void ulpd_persist_apply_rules(pid_t pid, const char *exe)
{
	for (size_t i = 0; i < ulpd_nr_rules; i++) {
		struct ulp_apply_opts opts = { .display = ulpd_rules[i].display };
		struct ulp_target *t;
		int ret;

		if (strcmp(ulpd_rules[i].exe, exe) != 0)
			continue;
		ret = ulpd_target_get(pid, &t);
		if (ret == 0)
			ret = ulp_patch_apply(t, ulpd_rules[i].patch, &opts, NULL);
		if (ret < 0)
			ulpd_log(LOG_WARNING, "persist-failed", pid, ulpd_rules[i].name,
				 "process %d executing %s: %s", pid, exe, ulp_last_error());
		else
			ulpd_log(LOG_NOTICE, "persist", pid, ulpd_rules[i].name,
				 "process %d executing %s: patch '%s' applied before main()", pid,
				 exe, ulpd_rules[i].name);
		ulp_error_clear();
	}
}

/*
 * Processes an earlier ulpd left spinning at their entry (it died there):
 * patched as it would have, then let start.  After the rules are loaded.
 */
static void ulpd_pending_release(void)
{
	DIR *d = opendir(ulpd_state_dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		unsigned long long start, entry;
		unsigned b0, b1;
		char path[PATH_MAX + 300];
		pid_t pid;
		FILE *f;
		int n;

		if (sscanf(e->d_name, "persist-%d", &pid) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/%s", ulpd_state_dir, e->d_name);
		f = fopen(path, "re");
		n = f ? fscanf(f, "%llu %llu %u %u", &start, &entry, &b0, &b1) : 0;
		if (f)
			fclose(f);
		if (n == 4 && ulp_proc_start_time(pid) == start) {
			uint8_t orig[2] = { (uint8_t)b0, (uint8_t)b1 };
			char link[64], exe[PATH_MAX] = "";
			ssize_t len;

			snprintf(link, sizeof(link), "/proc/%d/exe", pid);
			len = readlink(link, exe, sizeof(exe) - 1);
			exe[len > 0 ? len : 0] = '\0';
			ulpd_persist_apply_rules(pid, exe);
			if (ulpd_persist_release(pid, entry, orig) < 0)
				ulpd_log(LOG_ERR, "persist-failed", pid, NULL,
					 "process %d: cannot release it at its entry: %s", pid,
					 ulp_last_error());
			ulp_error_clear();
		}
		unlink(path);
	}
	if (d)
		closedir(d);
}

void ulpd_persist_init(const char *state_dir)
{
	struct json_object *a;

	snprintf(ulpd_state_dir, sizeof(ulpd_state_dir), "%s", state_dir);

	snprintf(ulpd_rules_file, sizeof(ulpd_rules_file), "%s/persist.json", state_dir);
	a = json_object_from_file(ulpd_rules_file);
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *r = json_object_array_get_idx(a, i), *e, *p, *d, *n;

		if (json_object_object_get_ex(r, "exe", &e) &&
		    json_object_object_get_ex(r, "patch", &p) &&
		    json_object_object_get_ex(r, "display", &d) &&
		    json_object_object_get_ex(r, "name", &n) &&
		    ulpd_persist_add(json_object_get_string(e), json_object_get_string(p),
				     json_object_get_string(d), json_object_get_string(n)) < 0) {
			ulpd_log(LOG_WARNING, "persist-failed", 0, json_object_get_string(n), "%s",
				 ulp_last_error());
			ulp_error_clear();
		}
	}
	json_object_put(a);
	ulpd_pending_release();
}

/* Wait up to ms for a ptrace stop of pid (or, for an exec, any tracee). */
static int ulpd_wait_stop(pid_t pid, int *status, int ms)
{
	for (int waited = 0; waited < ms; waited++) {
		pid_t got = waitpid(pid, status, __WALL | WNOHANG);

		if (got > 0)
			return got;
		if (got < 0 && errno != EINTR)
			return -errno;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

static uint64_t ulpd_entry_of(pid_t pid)
{
	char path[64];
	uint64_t av[2], entry = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fread(av, sizeof(av), 1, f) == 1 && av[0] != AT_NULL)
		if (av[0] == AT_ENTRY)
			entry = av[1];
	fclose(f);
	return entry;
}

static int ulpd_mem(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write ? pwrite(fd, buf, len, (off_t)addr) : pread(fd, buf, len, (off_t)addr);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* Is pid's (only) thread spinning at entry yet?  A look under ptrace. */
static int ulpd_at_entry(pid_t pid, uint64_t entry)
{
	struct user_regs_struct regs;
	int status, ret = 0;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && ulpd_wait_stop(pid, &status, 1000) > 0 &&
	    ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0)
		ret = regs.rip == entry;
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return ret;
}

/* The entry's own bytes back, while the thread spins there: a code change like any. */
static int ulpd_persist_release(pid_t pid, uint64_t entry, const uint8_t orig[2])
{
	struct ulp_target *t;
	int ret = ulpd_target_get(pid, &t);

	return ret < 0 ? ret : ulp_target_write_code(t, entry, orig, 2);
}

/*
 * The exec'ing thread tid, seized before the exec is allowed: stop it at
 * its program's entry (spinning), apply the rules' patches, let it start.
 */
static void ulpd_persist_exec(pid_t tid, const struct fanotify_event_metadata *m, const char *exe)
{
	struct fanotify_response allow = { .fd = m->fd, .response = FAN_ALLOW };
	static const uint8_t spin[2] = { 0xeb, 0xfe }; /* jmp . */
	uint8_t orig[2];
	uint64_t entry = 0;
	pid_t pid = tid;
	int status, got, ret;

	ret = ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACEEXEC) < 0 ? -errno : 0;
	/* the exec goes on whatever: a program never waits on ulpd's failure */
	if (write(ulpd_fan, &allow, sizeof(allow)) != sizeof(allow))
		ret = ret ? ret : -errno;
	if (ret < 0) {
		ulpd_log(LOG_WARNING, "persist-failed", tid, NULL,
			 "process %d executing %s: cannot trace it: %s", tid, exe, strerror(-ret));
		return;
	}
	/*
	 * PTRACE_EVENT_EXEC: the new program, before its first instruction.
	 * A signal that arrives first is passed on, not lost.
	 */
	for (;;) {
		got = ulpd_wait_stop(-1, &status, ULPD_PERSIST_WAIT_MS);
		if (got <= 0 || !WIFSTOPPED(status) ||
		    status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)) || status >> 16)
			break;
		ptrace(PTRACE_CONT, got, 0, WSTOPSIG(status));
	}
	if (got > 0 && !WIFSTOPPED(status))
		got = 0; /* it exited: nothing to detach from */
	if (got > 0 && status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		pid = got; /* a non-leader thread that exec'd takes the group's id */
		entry = ulpd_entry_of(pid);
		if (entry && ulpd_mem(pid, entry, orig, sizeof(orig), false) == 0)
			ulpd_pending_write(pid, entry, orig);
		if (entry && ulpd_mem(pid, entry, (void *)spin, sizeof(spin), true) == 0)
			ret = 0;
		else
			entry = 0;
	}
	if (got > 0)
		ptrace(PTRACE_DETACH, pid, 0, 0);
	else if (got < 0)
		ptrace(PTRACE_DETACH, tid, 0, 0);
	if (!entry) {
		ulpd_pending_clear(pid);
		ulpd_log(LOG_WARNING, "persist-failed", tid, NULL,
			 "process %d executing %s: could not stop it at its entry", tid, exe);
		return;
	}
	{
		uint64_t deadline = ulp_now_us() + ULPD_PERSIST_WAIT_MS * 1000ull;

		while (ulp_now_us() < deadline && ulpd_at_entry(pid, entry) == 0)
			usleep(1000);
	}
	ulp_fault_point("persist-spin");
	ulpd_persist_apply_rules(pid, exe);
	/* the program starts: its entry's own bytes back, as any code change */
	ret = ulpd_persist_release(pid, entry, orig);
	if (ret == 0)
		ulpd_pending_clear(pid);
	if (ret < 0) {
		ulpd_log(LOG_ERR, "persist-failed", pid, NULL,
			 "process %d executing %s: cannot release it at its entry: %s", pid, exe,
			 ulp_last_error());
		ulp_error_clear();
	}
}

void ulpd_persist_ready(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
	ssize_t len = read(ulpd_fan, buf, sizeof(buf));

	for (struct fanotify_event_metadata *m = (void *)buf; len > 0 && FAN_EVENT_OK(m, len);
	     m = FAN_EVENT_NEXT(m, len)) {
		char link[64], exe[PATH_MAX] = "";
		ssize_t n;

		if (m->vers != FANOTIFY_METADATA_VERSION || m->fd < 0)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fd);
		n = readlink(link, exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		if (m->mask & FAN_OPEN_EXEC_PERM)
			ulpd_persist_exec((pid_t)m->pid, m, exe);
		close(m->fd);
	}
}
