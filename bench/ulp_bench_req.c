// SPDX-License-Identifier: MIT
/*
 * ulp_bench_req - send one request to ulpd and print its reply flat, with
 * the wall time of the exchange, for the benchmark scripts:
 *
 *   ulp_bench_req SOCKET 'JSON-REQUEST'
 *   -> wall_us=1234 ok=1 longest_stop_us=56 transition_us=789 message=...
 *
 * wall_us runs from before connect() to the end of the reply: what
 * "ulpctl apply" waits for, without ulpctl's own start-up.  Numbers and
 * booleans of the reply come first, strings last (they may hold spaces).
 * Exit status 0 when the reply has "ok":true, 1 otherwise; the reply is read
 * with a 600 s receive timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

static void print_fields(struct json_object *reply, int strings)
{
	json_object_object_foreach(reply, key, val)
	{
		enum json_type type = json_object_get_type(val);

		if (strings != (type == json_type_string))
			continue;
		switch (type) {
		case json_type_boolean:
			printf(" %s=%d", key, json_object_get_boolean(val));
			break;
		case json_type_int:
			printf(" %s=%lld", key, (long long)json_object_get_int64(val));
			break;
		case json_type_double:
			printf(" %s=%g", key, json_object_get_double(val));
			break;
		case json_type_string:
			printf(" %s=%s", key, json_object_get_string(val));
			break;
		default:
			break;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 600 };
	struct json_object *req, *reply, *ok;
	size_t len = 0, cap = 1 << 16;
	unsigned long long t0, t1;
	const char *out;
	char *buf;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: ulp_bench_req SOCKET JSON-REQUEST\n");
		return 2;
	}
	req = json_tokener_parse(argv[2]);
	if (!req) {
		fprintf(stderr, "ulp_bench_req: bad JSON request\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "ulp_bench_req: socket path too long\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	out = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	buf = malloc(cap);
	if (!buf)
		return 2;
	t0 = now_us();
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "ulp_bench_req: cannot connect to %s: %s\n", argv[1],
			strerror(errno));
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (dprintf(fd, "%s\n", out) < 0) {
		fprintf(stderr, "ulp_bench_req: send: %s\n", strerror(errno));
		return 2;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len - 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "ulp_bench_req: read: %s\n", strerror(errno));
			return 2;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				return 2;
			buf = nb;
			cap *= 2;
		}
	}
	t1 = now_us();
	close(fd);
	buf[len] = '\0';
	reply = json_tokener_parse(buf);
	if (!reply || !json_object_is_type(reply, json_type_object)) {
		fprintf(stderr, "ulp_bench_req: no valid reply: %s\n", buf);
		return 2;
	}
	printf("wall_us=%llu", t1 - t0);
	print_fields(reply, 0);
	print_fields(reply, 1);
	printf("\n");
	return json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok) ? 0 : 1;
}
