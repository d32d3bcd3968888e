/* SPDX-License-Identifier: MIT */
/* ulpd: owns all live patch state and serves ulpctl on a unix socket. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "inject.h"
#include "journal.h"

#define ULPD_DEFAULT_SOCKET "/run/ulp/ulpd.sock"
#define ULPD_DEFAULT_STATE_DIR "/var/lib/ulp"

static void ulpd_usage(FILE *out)
{
	fprintf(out,
		"Usage: ulpd [--socket PATH] [--state-dir DIR] [--runtime PATH]\n"
		"       ulpd --can-adopt [--socket PATH] [--state-dir DIR]\n"
		"\n"
		"Live patching daemon: serves ulpctl requests on a unix socket, in the foreground.\n"
		"\n"
		"  -s, --socket PATH     control socket (default $ULP_SOCKET or %s;\n"
		"                        under socket activation, the one systemd passes)\n"
		"  -d, --state-dir DIR   patch store (default %s)\n"
		"  -r, --runtime PATH    libulp-rt.so to inject (default $ULP_RUNTIME or %s)\n"
		"      --can-adopt       say whether this ulpd could take over every process\n"
		"                        the running ulpd of the socket patched (exit 0), or\n"
		"                        which it could not (exit 1); serves nothing\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n",
		ULPD_DEFAULT_SOCKET, ULPD_DEFAULT_STATE_DIR, ULP_RUNTIME_INSTALL_PATH);
}

/* In a build tree the runtime sits next to us in ../runtime/. */
static void ulpd_default_runtime(void)
{
	char self[4096], cand[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	snprintf(cand, sizeof(cand), "%s/../runtime/libulp-rt.so", self);
	if (access(cand, R_OK) == 0 && access(ULP_RUNTIME_INSTALL_PATH, R_OK) != 0) {
		char *real = realpath(cand, NULL);

		if (real) {
			ulp_runtime_set_path(real);
			free(real);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "can-adopt", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ulpd_config cfg = {
		.socket_path = getenv("ULP_SOCKET") ? getenv("ULP_SOCKET") : ULPD_DEFAULT_SOCKET,
		.state_dir = ULPD_DEFAULT_STATE_DIR,
	};
	const char *runtime = getenv("ULP_RUNTIME");
	bool can_adopt = false;
	int c;

	cfg.socket_path_given = getenv("ULP_SOCKET") != NULL;
	ulpd_log_init();

	while ((c = getopt_long(argc, argv, "s:d:r:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.socket_path = optarg;
			cfg.socket_path_given = true;
			break;
		case 'd':
			cfg.state_dir = optarg;
			break;
		case 'r':
			runtime = optarg;
			break;
		case 'A':
			can_adopt = true;
			break;
		case 'h':
			ulpd_usage(stdout);
			return 0;
		case 'V':
			printf("ulpd %s\n", ULP_VERSION);
			return 0;
		default:
			ulpd_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ulpd: unexpected argument '%s'\n", argv[optind]);
		ulpd_usage(stderr);
		return 2;
	}
	if (can_adopt)
		return ulpd_can_adopt_all(&cfg) == 0 ? 0 : 1;
	if (runtime) {
		char *real = realpath(runtime, NULL);

		if (!real) {
			ulpd_log(LOG_ERR, "runtime-error", 0, NULL, "runtime %s: %m", runtime);
			return 1;
		}
		ulp_runtime_set_path(real);
		free(real);
	} else {
		ulpd_default_runtime();
	}
	return ulpd_serve(&cfg);
}
