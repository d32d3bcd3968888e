/* SPDX-License-Identifier: MIT */
/* ulpctl: a thin client of ulpd.  Exit 0 only when the asked-for state was reached. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client.h"

#define ULPCTL_DEFAULT_SOCKET "/run/ulp/ulpd.sock"

static const char ulpctl_usage_text[] =
	"Usage: ulpctl [--socket PATH] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  apply PATCH.so -p PID [--no-wait] [--timeout SEC]   apply a live patch\n"
	"  apply PATCH.so --exe PATH [--persist] [--json]      ... to every process of PATH\n"
	"  revert NAME -p PID [--no-wait]                      revert an applied patch\n"
	"  revert NAME --exe PATH [--json]                     ... in every process of PATH\n"
	"  check PATCH.so [-p PID]                             validate only; nothing changes\n"
	"  status [-p PID] [--json]                            show applied patches\n"
	"  threads -p PID [--json]                             each thread's patch state\n"
	"  force NAME -p PID                                   finish a stalled transition (unsafe)\n"
	"  log -p PID [-f]                                     show a process's event log\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH   ulpd's socket (default $ULP_SOCKET or " ULPCTL_DEFAULT_SOCKET ")\n"
	"  -p, --pid PID       the process\n"
	"  -e, --exe PATH      apply, revert: every running process of that executable\n"
	"                      (the same file, or the same build-id), in parallel\n"
	"      --persist       apply --exe: also patch processes of PATH started later,\n"
	"                      before their main() (until revert --exe; root only)\n"
	"  -t, --timeout SEC   apply: reverse the transition if not complete after SEC seconds\n"
	"      --no-wait       apply, revert: return once the transition has started\n"
	"  -f, --follow        log: keep printing new lines until the process exits\n"
	"      --json          status, threads, apply/revert --exe: machine-readable output\n"
	"  -h, --help          show this help (also after a command)\n"
	"  -V, --version       show the version\n"
	"\n"
	"Exit status: 0 when the requested state was reached, 1 on error, 2 on bad usage.\n";

struct ulpctl_args {
	const char *socket;
	const char *cmd;
	const char *operand;
	const char *exe;
	long pid;
	long timeout;
	int json;
	int no_wait;
	int persist;
	int follow;
};

static int ulpctl_usage(FILE *out, int status)
{
	fputs(ulpctl_usage_text, out);
	return status;
}

static int ulpctl_parse_pid(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v <= 0 || v > INT_MAX) {
		fprintf(stderr, "ulpctl: invalid PID '%s'\n", s);
		return -1;
	}
	*out = v;
	return 0;
}

static int ulpctl_parse(int argc, char **argv, struct ulpctl_args *a)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "pid", required_argument, NULL, 'p' },
		{ "exe", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "persist", no_argument, NULL, 'P' },
		{ "follow", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* Permute so options may come before or after the command. */
	while ((c = getopt_long(argc, argv, "s:p:e:t:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			a->exe = optarg;
			break;
		case 's':
			a->socket = optarg;
			break;
		case 'p':
			if (ulpctl_parse_pid(optarg, &a->pid) < 0)
				return 2;
			break;
		case 'j':
			a->json = 1;
			break;
		case 't': {
			char *end;

			a->timeout = strtol(optarg, &end, 10);
			if (*end || a->timeout <= 0) {
				fprintf(stderr, "ulpctl: invalid timeout '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'n':
			a->no_wait = 1;
			break;
		case 'P':
			a->persist = 1;
			break;
		case 'f':
			a->follow = 1;
			break;
		case 'h':
			exit(ulpctl_usage(stdout, 0));
		case 'V':
			printf("ulpctl %s\n", ULP_VERSION);
			exit(0);
		default:
			return ulpctl_usage(stderr, 2);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "ulpctl: missing command\n");
		return ulpctl_usage(stderr, 2);
	}
	a->cmd = argv[optind++];
	if (optind < argc)
		a->operand = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "ulpctl: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

/* --exe requests ulpd is running or has yet to start (ulpd_fleet_status). */
static void ulpctl_print_exe_requests(struct json_object *reply)
{
	struct json_object *reqs, *v;

	if (!json_object_object_get_ex(reply, "exe_requests", &reqs))
		return;
	for (size_t i = 0; i < json_object_array_length(reqs); i++) {
		struct json_object *r = json_object_array_get_idx(reqs, i);
		bool apply;

		json_object_object_get_ex(r, "action", &v);
		apply = !strcmp(json_object_get_string(v), "apply");
		json_object_object_get_ex(r, "patch", &v);
		printf("--exe request: %s patch '%s' %s ", apply ? "apply" : "revert",
		       json_object_get_string(v), apply ? "to" : "in");
		json_object_object_get_ex(r, "exe", &v);
		printf("%s: ", json_object_get_string(v));
		json_object_object_get_ex(r, "state", &v);
		printf("%s", json_object_get_string(v));
		if (json_object_object_get_ex(r, "done", &v)) {
			printf(", %lld", (long long)json_object_get_int64(v));
			json_object_object_get_ex(r, "total", &v);
			printf(" of %lld process(es) done", (long long)json_object_get_int64(v));
		}
		printf("\n");
	}
}

static void ulpctl_print_status(struct json_object *reply)
{
	struct json_object *procs;

	if (!json_object_object_get_ex(reply, "processes", &procs))
		return;
	if (json_object_array_length(procs) == 0)
		printf("no patched processes\n");
	for (size_t i = 0; i < json_object_array_length(procs); i++) {
		struct json_object *p = json_object_array_get_idx(procs, i), *v, *patches;

		json_object_object_get_ex(p, "pid", &v);
		printf("process %d", json_object_get_int(v));
		json_object_object_get_ex(p, "exe", &v);
		printf(" (%s)\n", json_object_get_string(v));
		json_object_object_get_ex(p, "patches", &patches);
		if (json_object_array_length(patches) == 0)
			printf("  no patches\n");
		for (size_t j = 0; j < json_object_array_length(patches); j++) {
			struct json_object *pa = json_object_array_get_idx(patches, j), *objs, *x;

			json_object_object_get_ex(pa, "name", &x);
			printf("  patch '%s':", json_object_get_string(x));
			json_object_object_get_ex(pa, "enabled", &x);
			printf(" enabled=%d", json_object_get_boolean(x));
			json_object_object_get_ex(pa, "transition", &x);
			printf(" transition=%d", json_object_get_boolean(x));
			json_object_object_get_ex(pa, "replace", &x);
			printf(" replace=%d", json_object_get_boolean(x));
			json_object_object_get_ex(pa, "stack_order", &x);
			printf(" stack_order=%d\n", json_object_get_int(x));
			json_object_object_get_ex(pa, "objects", &objs);
			for (size_t k = 0; k < json_object_array_length(objs); k++) {
				struct json_object *o = json_object_array_get_idx(objs, k), *funcs;

				json_object_object_get_ex(o, "name", &x);
				printf("    object '%s':", json_object_get_string(x));
				json_object_object_get_ex(o, "patched", &x);
				printf(" patched=%d\n", json_object_get_boolean(x));
				json_object_object_get_ex(o, "functions", &funcs);
				for (size_t f = 0; f < json_object_array_length(funcs); f++) {
					struct json_object *fn = json_object_array_get_idx(funcs,
											   f),
							   *y;

					json_object_object_get_ex(fn, "old_name", &y);
					printf("      %s", json_object_get_string(y));
					json_object_object_get_ex(fn, "old_addr", &y);
					printf(" %s", json_object_get_string(y));
					json_object_object_get_ex(fn, "new_addr", &y);
					printf(" -> %s", json_object_get_string(y));
					if (json_object_object_get_ex(fn, "new_name", &y))
						printf(" (%s)", json_object_get_string(y));
					printf("\n");
				}
			}
		}
	}
	ulpctl_print_exe_requests(reply);
}

/*
 * apply/revert --exe: a line per process, then the summary; exit 0 when
 * no process failed (skipped ones did not need it or are another build).
 */
static int ulpctl_print_fleet(struct json_object *reply, bool json)
{
	struct json_object *procs, *v;
	bool ok = json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);

	if (json) {
		printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	} else {
		json_object_object_get_ex(reply, "processes", &procs);
		for (size_t i = 0; i < json_object_array_length(procs); i++) {
			struct json_object *p = json_object_array_get_idx(procs, i), *x;

			json_object_object_get_ex(p, "pid", &x);
			printf("process %d: ", json_object_get_int(x));
			json_object_object_get_ex(p, "result", &x);
			printf("%s", json_object_get_string(x));
			if (json_object_object_get_ex(p, "error", &x))
				printf(": %s", json_object_get_string(x));
			printf("\n");
		}
		json_object_object_get_ex(reply, "message", &v);
		fprintf(ok ? stdout : stderr, "%s%s\n",
			ok ? "" : "ulpctl: ", json_object_get_string(v));
	}
	json_object_put(reply);
	return ok ? 0 : 1;
}

static void ulpctl_print_threads(struct json_object *reply, bool json)
{
	struct json_object *threads, *tr, *v;

	json_object_object_get_ex(reply, "threads", &threads);
	json_object_object_get_ex(reply, "transition", &tr);
	if (json) {
		struct json_object *out = json_object_new_object();

		json_object_object_get_ex(reply, "pid", &v);
		json_object_object_add(out, "pid", json_object_get(v));
		json_object_object_add(out, "transition", json_object_get(tr));
		json_object_object_add(out, "threads", json_object_get(threads));
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
		json_object_put(out);
		return;
	}
	if (tr) {
		json_object_object_get_ex(tr, "patch", &v);
		printf("patch '%s' is in ", json_object_get_string(v));
		json_object_object_get_ex(tr, "direction", &v);
		printf("%s transition\n", json_object_get_string(v));
	} else {
		printf("no transition in progress\n");
	}
	printf("%-8s %-10s %s\n", "TID", "STATE", "BLOCKED IN");
	for (size_t i = 0; threads && i < json_object_array_length(threads); i++) {
		struct json_object *th = json_object_array_get_idx(threads, i), *f, *o;

		json_object_object_get_ex(th, "tid", &v);
		printf("%-8d ", json_object_get_int(v));
		json_object_object_get_ex(th, "state", &v);
		printf("%-10s", json_object_get_string(v));
		if (json_object_object_get_ex(th, "blocked_on", &f) &&
		    json_object_object_get_ex(th, "object", &o))
			printf(" %s (%s)", json_object_get_string(f), json_object_get_string(o));
		printf("\n");
	}
}

static void ulpctl_print_lines(struct json_object *reply)
{
	struct json_object *lines;

	json_object_object_get_ex(reply, "lines", &lines);
	for (size_t i = 0; lines && i < json_object_array_length(lines); i++)
		printf("%s\n", json_object_get_string(json_object_array_get_idx(lines, i)));
	fflush(stdout);
}

/* log -f: ask for the lines after the last seen, until the process is gone. */
static int ulpctl_follow_log(const char *socket, long pid)
{
	int64_t next = 0;

	for (;;) {
		struct json_object *req = json_object_new_object(), *reply = NULL, *v;
		bool alive = true;

		json_object_object_add(req, "cmd", json_object_new_string("log"));
		json_object_object_add(req, "pid", json_object_new_int64(pid));
		json_object_object_add(req, "from", json_object_new_int64(next));
		if (ulpctl_request(socket, req, &reply) < 0) {
			json_object_put(req);
			return 1;
		}
		json_object_put(req);
		if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v)) {
			json_object_object_get_ex(reply, "error", &v);
			/* the process is gone: the log ends there */
			if (next > 0) {
				json_object_put(reply);
				return 0;
			}
			fprintf(stderr, "ulpctl: %s\n",
				v ? json_object_get_string(v) : "request failed");
			json_object_put(reply);
			return 1;
		}
		ulpctl_print_lines(reply);
		if (json_object_object_get_ex(reply, "next", &v))
			next = json_object_get_int64(v);
		if (json_object_object_get_ex(reply, "alive", &v))
			alive = json_object_get_boolean(v);
		json_object_put(reply);
		if (!alive)
			return 0;
		usleep(200 * 1000);
	}
}

static int ulpctl_need(const struct ulpctl_args *a, bool operand, bool pid, const char *what)
{
	if (operand && !a->operand) {
		fprintf(stderr, "ulpctl: %s: missing %s\n", a->cmd, what);
		return 2;
	}
	if (a->exe && a->pid) {
		fprintf(stderr, "ulpctl: %s: -p and --exe exclude each other\n", a->cmd);
		return 2;
	}
	if (pid && !a->pid && !a->exe) {
		fprintf(stderr, "ulpctl: %s: missing -p PID (or --exe PATH)\n", a->cmd);
		return 2;
	}
	return 0;
}

/* ulpd may run in another directory: send it an absolute path. */
static int ulpctl_abs_patch(const char *path, char *out)
{
	if (!realpath(path, out)) {
		fprintf(stderr, "ulpctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ulpctl_args a = { .socket = getenv("ULP_SOCKET") };
	struct json_object *req, *reply = NULL, *v;
	char patch[PATH_MAX];
	int ret, file = -1;

	ret = ulpctl_parse(argc, argv, &a);
	if (ret)
		return ret;
	if (!a.socket)
		a.socket = ULPCTL_DEFAULT_SOCKET;
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(a.cmd));
	if (strcmp(a.cmd, "apply") == 0 || strcmp(a.cmd, "check") == 0) {
		bool is_apply = a.cmd[0] == 'a';

		ret = ulpctl_need(&a, true, is_apply, "PATCH.so");
		if (!ret && a.exe && !is_apply) {
			fprintf(stderr, "ulpctl: check: --exe is for apply and revert\n");
			ret = 2;
		}
		if (!ret && ulpctl_abs_patch(a.operand, patch) < 0)
			ret = 1;
		/* ulpd reads the file through this, with its own rights: never by path */
		if (!ret && (file = open(patch, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "ulpctl: %s: %s\n", a.operand, strerror(errno));
			ret = 1;
		}
		if (!ret)
			json_object_object_add(req, "patch", json_object_new_string(patch));
		if (is_apply) {
			json_object_object_add(req, "wait", json_object_new_boolean(!a.no_wait));
			json_object_object_add(req, "timeout", json_object_new_int64(a.timeout));
		}
	} else if (strcmp(a.cmd, "revert") == 0 || strcmp(a.cmd, "force") == 0) {
		ret = ulpctl_need(&a, true, true, "NAME");
		if (!ret)
			json_object_object_add(req, "name", json_object_new_string(a.operand));
		if (a.cmd[0] == 'r')
			json_object_object_add(req, "wait", json_object_new_boolean(!a.no_wait));
	} else if (strcmp(a.cmd, "status") == 0) {
		ret = a.operand ? (fprintf(stderr, "ulpctl: status takes no operand\n"), 2) : 0;
	} else if (strcmp(a.cmd, "threads") == 0) {
		ret = a.operand ? (fprintf(stderr, "ulpctl: threads takes no operand\n"), 2)
				: ulpctl_need(&a, false, true, NULL);
	} else if (strcmp(a.cmd, "log") == 0) {
		ret = ulpctl_need(&a, false, true, NULL);
		if (!ret && a.follow) {
			json_object_put(req);
			return ulpctl_follow_log(a.socket, a.pid);
		}
	} else {
		fprintf(stderr, "ulpctl: unknown command '%s'\n", a.cmd);
		ret = ulpctl_usage(stderr, 2);
	}
	if (!ret && a.pid)
		json_object_object_add(req, "pid", json_object_new_int64(a.pid));
	if (!ret && a.persist && (!a.exe || strcmp(a.cmd, "apply") != 0)) {
		fprintf(stderr, "ulpctl: --persist goes with apply --exe\n");
		ret = 2;
	}
	if (!ret && a.persist)
		json_object_object_add(req, "persist", json_object_new_boolean(1));
	if (!ret && a.exe) {
		char exe[PATH_MAX];

		if (!realpath(a.exe, exe)) {
			fprintf(stderr, "ulpctl: %s: %s\n", a.exe, strerror(errno));
			ret = 1;
		} else {
			json_object_object_add(req, "exe", json_object_new_string(exe));
		}
	}
	if (!ret)
		ret = ulpctl_request_file(a.socket, req, file, &reply) < 0 ? 1 : 0;
	if (file >= 0)
		close(file);
	json_object_put(req);
	if (ret)
		return ret;
	if (a.exe && json_object_object_get_ex(reply, "matched", NULL))
		return ulpctl_print_fleet(reply, a.json);
	if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v)) {
		json_object_object_get_ex(reply, "error", &v);
		fprintf(stderr, "ulpctl: %s\n", v ? json_object_get_string(v) : "request failed");
		json_object_put(reply);
		return 1;
	}
	if (strcmp(a.cmd, "status") == 0) {
		if (a.json) {
			struct json_object *procs, *out = json_object_new_object();

			json_object_object_get_ex(reply, "processes", &procs);
			json_object_object_add(out, "processes", json_object_get(procs));
			if (json_object_object_get_ex(reply, "exe_requests", &procs))
				json_object_object_add(out, "exe_requests", json_object_get(procs));
			printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
			json_object_put(out);
		} else {
			ulpctl_print_status(reply);
		}
	} else if (strcmp(a.cmd, "threads") == 0) {
		ulpctl_print_threads(reply, a.json);
	} else if (strcmp(a.cmd, "log") == 0) {
		ulpctl_print_lines(reply);
	} else {
		json_object_object_get_ex(reply, "message", &v);
		printf("%s\n", json_object_get_string(v));
	}
	json_object_put(reply);
	return 0;
}
